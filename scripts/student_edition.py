"""Build the student edition of the book into _build/student/ (``make student``).

The student edition is the book without its solutions:

* ``_build/student/source/``: ``_config.yml``, ``_toc.yml``, ``companion/`` (whose
  source the pages include) and ``book/`` with
  every notebook stripped the way ``nbgrader generate_assignment`` strips it
  (each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes
  ``# YOUR CODE HERE`` and ``raise NotImplementedError()``, hidden tests are
  dropped, markdown answer cells become ``YOUR ANSWER HERE``), all outputs
  cleared, every ``{solution}`` directive removed from notebooks and
  ``.md`` pages, and every ``{glue:text}`` role (a value of the reader's run, which
  this unexecuted edition does not have) replaced by the name of the value. These
  are the notebooks to hand out.
* ``_build/student/html/``: the HTML book built from that source with its own
  ``_config.yml`` (notebooks not executed, launch buttons off, since they would
  open the full notebooks of the repository), with Sphinx warnings as errors.
  Its pages, its downloadable ``_sources/`` and its search index hold no
  solution, because the source it is built from has none.

The exercise convention it relies on is described in scripts/exercise_notebook.py.

Usage: ``python scripts/student_edition.py [--out _build/student] [--no-html]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = "YOUR ANSWER HERE"
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::[^`]*)?`")


def unglue(text: str) -> str:
    """Markdown with every ``{glue:text}`name:fmt``` role replaced by a pointer to the
    reader's run: the student edition is not executed, so it has no glued values (and
    ``-W`` would fail on each missing key)."""
    return GLUE_ROLE.sub(r"*(`\1` in your run)*", text)


OPENING = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}")
COPIED = ("_config.yml", "_toc.yml", "book")


def _replace_regions(source: str, begin: str, end: str, stub: list[str]) -> tuple[str, bool]:
    """Replace every ``begin`` ... ``end`` region by ``stub``, indented like ``begin``."""
    out: list[str] = []
    inside = found = False
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            if inside:
                raise ValueError(f"line {number}: {begin!r} inside another region")
            inside = found = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
        elif end in line:
            if not inside:
                raise ValueError(f"line {number}: {end!r} without {begin!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} is never closed by {end!r}")
    return "\n".join(out), found


def strip_code(source: str) -> str:
    """Code with its solution regions replaced by the stub and hidden tests removed."""
    source, _ = _replace_regions(source, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB)
    source, _ = _replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, [])
    return source


def strip_solution_directives(text: str) -> str:
    """Markdown without its ``{solution}`` directives (any fence, backticks or colons)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = OPENING.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        fence = match.group("fence")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == fence), None)
        if end is None:
            raise ValueError(f"the {{solution}} directive at line {i + 1} is never closed")
        i = end + 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def strip_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of a notebook (a new object; ``nb`` is left as it is)."""
    nb = nbformat.from_dict(nb)  # a deep copy
    cells = []
    for cell in nb.cells:
        is_answer = bool(_nbgrader(cell).get("solution"))
        if cell.cell_type == "code":
            source, found = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB)
            if is_answer and not found:  # a whole-cell answer, as nbgrader treats it
                source = "\n".join(CODE_STUB)
            cell.source, _ = _replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, [])
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            source, found = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, [TEXT_STUB])
            source = unglue(strip_solution_directives(source))
            if is_answer and not found:
                source = TEXT_STUB
            if not source.strip():
                continue
            cell.source = source
        cells.append(cell)
    nb.cells = cells
    return nb


def student_config(config_text: str) -> str:
    """The student build's _config.yml: no execution, no launch buttons, marked title."""
    config = yaml.safe_load(config_text)
    config["title"] = f"{config.get('title', 'Book')} (student edition)"
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config.pop("launch_buttons", None)
    header = "# Generated by scripts/student_edition.py from the book's _config.yml.\n"
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def write_source(root: Path, target: Path) -> list[Path]:
    """Copy the book's sources to ``target``, stripped; return the files written."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(root / "_toc.yml", target / "_toc.yml")
    (target / "_config.yml").write_text(
        student_config((root / "_config.yml").read_text(encoding="utf-8")), encoding="utf-8"
    )
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "_build")
    shutil.copytree(root / "book", target / "book", ignore=ignore)
    # Pages include the package's source (literalinclude ../../companion/...).
    shutil.copytree(
        root / "companion",
        target / "companion",
        ignore=shutil.ignore_patterns("__pycache__", "*.pt", "*.ckpt"),
    )
    written = []
    for path in sorted((target / "book").rglob("*")):
        if path.suffix == ".ipynb":
            try:
                nbformat.write(strip_notebook(nbformat.read(path, as_version=4)), path)
            except ValueError as err:
                raise ValueError(f"{path.relative_to(target)}: {err}") from err
        elif path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            try:
                path.write_text(unglue(strip_solution_directives(text)) + "\n", encoding="utf-8")
            except ValueError as err:
                raise ValueError(f"{path.relative_to(target)}: {err}") from err
        else:
            continue
        written.append(path)
    return written


def build_html(source: Path, html: Path, *, strict: bool = True) -> None:
    """Build ``source`` (a stripped book) into ``html`` with jupyter-book, no execution."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build"]
    command += [str(source), "--path-output", str(source)]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    subprocess.run(command, check=True)
    built = source / "_build" / "html"
    if html.exists():
        shutil.rmtree(html)
    shutil.move(str(built), str(html))
    shutil.rmtree(source / "_build")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's repository")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    parser.add_argument("--no-html", action="store_true", help="write the source only")
    args = parser.parse_args(argv)
    written = write_source(args.root, args.out / "source")
    print(f"student source: {len(written)} pages in {args.out / 'source'}")
    if not args.no_html:
        build_html(args.out / "source", args.out / "html")
        print(f"student HTML: {args.out / 'html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
