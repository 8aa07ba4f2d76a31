"""Turn a chapter's exercises page (MyST markdown) into its exercises notebook.

Usage: ``python scripts/exercise_notebook.py book/<chapter>/exercises.md`` writes
``book/<chapter>/exercises.ipynb`` next to it (``--remove`` also deletes the
``.md``, which must go: Jupyter Book cannot hold both), then run
``python scripts/install_cell.py`` to add the Colab install cell and
``ruff format`` on the notebook (``make lint`` checks both).

The exercise convention of the whole book
=========================================

Every chapter's exercises live in ``book/<chapter>/exercises.ipynb``, one
notebook that the book shows, Colab and Binder run, ``make student`` strips and
nbgrader grades. Its cells follow these rules (this script applies them to a
page written in MyST, so a new chapter needs no hand work):

* Prose and every ``{exercise}`` directive are markdown cells, text unchanged.
* **Text exercises** (proofs, questions) keep their ``{solution}`` directive with
  ``:class: dropdown`` in a markdown cell of its own, right after the exercise.
  That cell is an nbgrader *manually graded answer* (``solution: true``,
  ``grade: true``, points = the number of numbered parts of the exercise, at
  least 1), so ``nbgrader generate_assignment`` replaces it with
  ``YOUR ANSWER HERE``.
* **Code exercises** are those whose solution holds a ```` ```python ```` block.
  That block (the first one) becomes two code cells:

  1. the *solution cell* (``solution: true``, ``grade: false``,
     ``locked: false``, tag ``hide-input`` so the book folds it away): the
     imports stay as they are, each top-level function keeps its ``def`` line
     and docstring, and everything else sits between ``### BEGIN SOLUTION``
     and ``### END SOLUTION``. nbgrader (and ``make student``) turn each such
     region into ``# YOUR CODE HERE`` and ``raise NotImplementedError()``, so
     the student gets the signatures to fill in;
  2. the *autograder test cell* (``grade: true``, ``locked: true``, 1 point
     per check): the calls ``check_*(...)`` of ``companion.exercises`` found in
     the block, with their import. A check prints on success and raises
     ``ExerciseError`` with a plain-words message otherwise (nothing may go to
     stderr: nbgrader gives 0 points for a cell that writes there).

  A code exercise without a ``check_*`` call (an exploration whose answer is a
  printout or a figure) has no test cell: its code cell is a *manually graded
  answer* (``solution: true``, ``grade: true``, 1 point). Adding a check to
  ``companion.exercises`` and calling it at the end of the solution block
  turns it into an autograded one.

  What is left of the ``{solution}`` directive (the explanation, other
  versions of the code) stays in a dropdown markdown cell after the code, a
  manually graded answer worth 1 point if the exercise asks a question or asks
  the student to show something ("?" or "show that"), else 0 points: it exists so
  that the release does not show it.
* **Hidden tests** (added by hand to the check cells of graded chapters): a region
  ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` with fixed cases whose
  expected values were computed independently (not by ``companion.exercises``).
  The book shows them; nbgrader's release and ``make student`` drop them, and
  ``nbgrader autograde`` restores and runs them (book/instructors/assigning.md).
* **Points and time** are shown to students: each exercise statement starts with
  "*(N points, about A–B min)*", written from the nbgrader metadata and
  book/instructors/exercise_times.md by ``scripts/exercise_points.py``.

Grade ids are the directive labels: ``<exercise label>-solution`` and
``<exercise label>-check`` for the code cells, the ``{solution}`` label for the
dropdown cell. Every code cell must run in a few seconds with
``COMPANION_FAST=1``: the notebook is executed by the book and by
``pytest --nbval-lax``.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{(exercise|solution)\}\s*(.*)$")
LABEL = re.compile(r"^:label:\s*(\S+)\s*$", re.M)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```\n?", re.M | re.S)
NUMBERED_PART = re.compile(r"^\d+\.\s", re.M)


@dataclass
class Block:
    """A piece of the page: prose, or one top-level exercise/solution directive."""

    kind: str  # "prose", "exercise" or "solution"
    text: str
    argument: str = ""  # the directive's argument: a title, or the exercise label


def split_page(text: str) -> list[Block]:
    """Cut a MyST page into prose and top-level ``{exercise}``/``{solution}`` directives."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        match = DIRECTIVE.match(lines[i].rstrip("\n"))
        if match is None:
            prose.append(lines[i])
            i += 1
            continue
        fence = match.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") == fence), None)
        if end is None:
            raise ValueError(f"the directive opened at line {i + 1} is never closed by {fence!r}")
        if "".join(prose).strip():
            blocks.append(Block("prose", "".join(prose)))
        prose = []
        blocks.append(Block(match.group(2), "".join(lines[i : end + 1]), match.group(3).strip()))
        i = end + 1
    if "".join(prose).strip():
        blocks.append(Block("prose", "".join(prose)))
    return blocks


def prose_cells(text: str) -> list[str]:
    """Prose split before each heading, one markdown cell per section."""
    cells, current = [], []
    for line in text.strip("\n").splitlines():
        if line.startswith("#") and any(s.strip() for s in current):
            cells.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(s.strip() for s in current):
        cells.append("\n".join(current).strip("\n"))
    return cells


def _is_check_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id.startswith("check_")
    )


def _is_exercises_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "companion.exercises"


def split_solution_code(code: str) -> tuple[str, str]:
    """The solution cell (with solution regions) and the test cell ('' if no check).

    ``code`` is one Python block of a worked solution. Imports stay outside the
    regions, top-level functions keep their signature and docstring, every other
    statement goes into a region; ``check_*(...)`` calls and the import of
    ``companion.exercises`` move to the test cell.
    """
    lines = code.rstrip("\n").split("\n")
    tree = ast.parse(code)
    solution: list[str] = []
    checks: list[str] = []
    imports: list[str] = []
    region: list[str] = []

    def flush_region(indent: str = "") -> None:
        while region and not region[-1].strip():
            region.pop()
        while region and not region[0].strip():
            solution.append(region.pop(0))
        if region:
            solution.extend([indent + BEGIN, *region, indent + END])
        region.clear()

    def text_of(first: int, last: int) -> list[str]:
        return lines[first - 1 : last]

    previous_end = 0
    for node in tree.body:
        start = (
            node.lineno
            if not getattr(node, "decorator_list", None)
            else min(d.lineno for d in node.decorator_list)
        )
        gap = text_of(previous_end + 1, start - 1)  # blank lines and comments between
        previous_end = node.end_lineno
        if _is_exercises_import(node):
            imports.extend(text_of(node.lineno, node.end_lineno))
            continue
        if _is_check_call(node):
            checks.extend(text_of(node.lineno, node.end_lineno))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            flush_region()
            solution.extend(gap + text_of(start, node.end_lineno))
            continue
        if isinstance(node, ast.FunctionDef):
            flush_region()
            solution.extend(gap)
            body = node.body
            keep_to = body[0].lineno - 1
            if (
                isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                keep_to = body[0].end_lineno
                body = body[1:]
            solution.extend(text_of(start, keep_to))
            if body:
                indent = re.match(r"\s*", lines[body[0].lineno - 1]).group(0)
                region.extend(text_of(keep_to + 1, node.end_lineno))
                flush_region(indent)
            continue
        region.extend(gap + text_of(start, node.end_lineno))
    flush_region()
    while solution and not solution[0].strip():
        solution.pop(0)
    source = re.sub(r"\n{3,}(?=[^\n])", "\n\n\n", "\n".join(solution)).strip("\n")
    test = "\n".join(imports + [""] + checks).strip("\n") if checks else ""
    return source, test


def nbgrader(grade_id: str, *, solution: bool, grade: bool, locked: bool, points=None) -> dict:
    """nbgrader cell metadata (schema 3)."""
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return meta


def _solution_label(text: str, fallback: str) -> str:
    match = LABEL.search(text)
    return match.group(1) if match else fallback


def exercise_cells(exercise: Block, solution: Block | None) -> list[nbformat.NotebookNode]:
    """The cells of one exercise and its solution, following the book's convention."""
    label_match = LABEL.search(exercise.text)
    if label_match is None:
        raise ValueError(f"exercise {exercise.argument!r} has no :label:; nbgrader needs one")
    label = label_match.group(1)
    cells = [nbformat.v4.new_markdown_cell(exercise.text.strip("\n"))]
    if solution is None:
        return cells
    sol_label = _solution_label(solution.text, f"{label}-answer")
    code_match = PYTHON_BLOCK.search(solution.text)
    if code_match is None:  # a text exercise
        points = max(1, len(NUMBERED_PART.findall(exercise.text)))
        cell = nbformat.v4.new_markdown_cell(solution.text.strip("\n"))
        cell.metadata["nbgrader"] = nbgrader(
            sol_label, solution=True, grade=True, locked=False, points=points
        )
        return cells + [cell]

    source, test = split_solution_code(code_match.group(1))
    code = nbformat.v4.new_code_cell(source)
    code.metadata["tags"] = ["hide-input"]
    if test:
        code.metadata["nbgrader"] = nbgrader(
            f"{label}-solution", solution=True, grade=False, locked=False
        )
        check = nbformat.v4.new_code_cell(test)
        n_checks = sum(1 for line in test.splitlines() if line.startswith("check_"))
        check.metadata["nbgrader"] = nbgrader(
            f"{label}-check", solution=False, grade=True, locked=True, points=n_checks
        )
        cells += [code, check]
    else:
        code.metadata["nbgrader"] = nbgrader(
            f"{label}-solution", solution=True, grade=True, locked=False, points=1
        )
        cells.append(code)

    before = solution.text[: code_match.start()].rstrip("\n")
    after = solution.text[code_match.end() :].lstrip("\n")
    last_line = before.rsplit("\n", 1)[-1]
    if last_line.endswith(":") and not last_line.startswith(":"):  # prose announcing the code
        before += "\n(The code is in the solution cell above.)"
    rest = before + "\n\n" + after
    header, _, body = rest.partition("\n")
    body_lines = body.rstrip("\n").split("\n")[:-1]  # drop the closing fence
    options = [line for line in body_lines if line.startswith(":")]
    content = "\n".join(body_lines[len(options) :]).strip("\n")
    if content:
        fence = header.split("{", 1)[0]
        if "```" not in content:  # the code block held the only nested fence
            header, fence = "```" + header[len(fence) :], "```"
        text = "\n".join([header, *options, "", content, fence])
        cell = nbformat.v4.new_markdown_cell(text)
        points = 1 if "?" in exercise.text else 0
        cell.metadata["nbgrader"] = nbgrader(
            sol_label, solution=True, grade=True, locked=False, points=points
        )
        cells.append(cell)
    return cells


def page_to_notebook(text: str) -> nbformat.NotebookNode:
    """The exercises notebook of a MyST exercises page."""
    blocks = split_page(text)
    cells: list[nbformat.NotebookNode] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind == "prose":
            cells += [nbformat.v4.new_markdown_cell(c) for c in prose_cells(block.text)]
            i += 1
        elif block.kind == "exercise":
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            solution = nxt if nxt is not None and nxt.kind == "solution" else None
            cells += exercise_cells(block, solution)
            i += 2 if solution is not None else 1
        else:
            raise ValueError(f"a solution ({block.argument}) that follows no exercise")
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path, help="book/<chapter>/exercises.md")
    parser.add_argument("--remove", action="store_true", help="delete each page once converted")
    args = parser.parse_args(argv)
    for page in args.pages:
        nb = page_to_notebook(page.read_text(encoding="utf-8"))
        target = page.with_suffix(".ipynb")
        nbformat.validate(nb)
        nbformat.write(nb, target)
        print(f"wrote {target} ({len(nb.cells)} cells)")
        if args.remove:
            page.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
