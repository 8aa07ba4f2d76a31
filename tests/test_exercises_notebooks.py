"""The check cells of the exercises notebooks, run on the notebooks' own solutions.

* Every check passes on its reference solution with warnings turned into errors and
  writes nothing to stderr: nbgrader gives 0 points to a check cell that writes there.
* Every check cell holds nbgrader hidden tests (``### BEGIN HIDDEN TESTS``): they pass
  on the solutions, fail on the release's stubs, catch an answer that monkeypatches the
  visible check, and the student edition drops them.
* Every solution cell that uses torch imports it, so that each stub runs on its own.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("book/*/exercises.ipynb"))
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
student_edition = load_script("student_edition")


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_check(cell) -> bool:
    return cell.cell_type == "code" and meta(cell).get("grade") and not meta(cell).get("solution")


def is_solution(cell) -> bool:
    """A solution cell with a check after it (explorations are whole-cell answers)."""
    return cell.cell_type == "code" and meta(cell).get("solution") and not meta(cell).get("grade")


def chapter(path: Path) -> str:
    return path.parent.name


def visible(source: str) -> str:
    return source.split(BEGIN_HIDDEN)[0]


def run_cells(nb, *, stubs: bool = False):
    """Run the solution cells (or their stubs) and the check cells in order; yield each
    check cell's grade id with the error it raised (None) and what it wrote to stderr."""
    namespace: dict = {}
    for cell in nb.cells:
        if is_solution(cell):
            source = student_edition.strip_code(cell.source) if stubs else cell.source
            exec(compile(source, meta(cell)["grade_id"], "exec"), namespace)
        elif is_check(cell):
            err, out = io.StringIO(), io.StringIO()
            error = None
            with (
                warnings.catch_warnings(),
                contextlib.redirect_stderr(err),
                contextlib.redirect_stdout(out),
            ):
                warnings.simplefilter("error")
                try:
                    exec(compile(cell.source, meta(cell)["grade_id"], "exec"), namespace)
                except Exception as exc:  # noqa: BLE001 - reported by the caller
                    error = exc
            yield meta(cell)["grade_id"], error, err.getvalue()


def test_there_are_check_cells_in_six_chapters():
    with_checks = [p for p in NOTEBOOKS if any(map(is_check, nbformat.read(p, 4).cells))]
    assert len(with_checks) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=chapter)
def test_every_check_passes_its_solution_without_warnings_or_stderr(path):
    results = list(run_cells(nbformat.read(path, as_version=4)))
    failures = {gid: repr(error) for gid, error, _ in results if error is not None}
    assert failures == {}, "a check (or its hidden tests) fails, or warns, on the solution"
    assert {gid: err for gid, _, err in results if err} == {}, "a check wrote to stderr"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=chapter)
def test_every_check_cell_has_hidden_tests_that_fail_on_the_stubs(path):
    nb = nbformat.read(path, as_version=4)
    checks = [c for c in nb.cells if is_check(c)]
    for cell in checks:
        source = cell.source
        assert source.count(BEGIN_HIDDEN) == 1 and source.count(END_HIDDEN) == 1, meta(cell)[
            "grade_id"
        ]
        hidden = source.split(BEGIN_HIDDEN)[1].split(END_HIDDEN)[0]
        assert "companion" not in hidden.replace("companion.exercises.", ""), (
            "hidden tests must not rely on the checks they back up"
        )
        assert re.search(r"^\s*assert ", hidden, re.M), meta(cell)["grade_id"]
    results = list(run_cells(nb, stubs=True))
    assert len(results) == len(checks)
    assert [gid for gid, error, _ in results if error is None] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=chapter)
def test_the_student_edition_drops_the_hidden_tests(path):
    nb = nbformat.read(path, as_version=4)
    stripped = student_edition.strip_notebook(nb)
    code = "\n".join(c.source for c in stripped.cells if c.cell_type == "code")
    assert "HIDDEN TESTS" not in code
    assert "hidden test:" not in code
    # the visible part of every check cell is still there
    for cell in filter(is_check, nb.cells):
        assert visible(cell.source).strip() in code


def test_hidden_tests_catch_an_answer_that_patches_the_visible_check():
    """A solution cell can replace the check it is graded by; the hidden tests stay."""
    nb = nbformat.read(ROOT / "book" / "clustering" / "exercises.ipynb", as_version=4)
    cell = next(c for c in nb.cells if meta(c).get("grade_id") == "clu-ex-code-estep-check")
    namespace: dict = {}
    exec(
        "import torch\n"
        "import companion.exercises\n"
        "companion.exercises.check_e_step = lambda fn: print('check_e_step: correct')\n"
        "def e_step(X, weights, means, variances):\n"
        "    return torch.zeros(X.shape[0], len(weights))\n",
        namespace,
    )
    import companion.exercises

    original = companion.exercises.check_e_step
    try:
        with pytest.raises(AssertionError, match="hidden test"):
            exec(cell.source, namespace)
        exec(visible(cell.source), namespace)  # the visible check alone is fooled
    finally:
        companion.exercises.check_e_step = original


@pytest.mark.parametrize("path", NOTEBOOKS, ids=chapter)
def test_every_solution_cell_that_uses_torch_imports_it(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if is_solution(cell) and re.search(r"\btorch\.(?!nn\.functional)", cell.source):
            assert re.search(r"^import torch$", cell.source, re.M), meta(cell)["grade_id"]
