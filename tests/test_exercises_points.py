"""The points and time each exercise statement shows are nbgrader's and the times page's.

Every ``{exercise}`` cell of the exercises notebooks shows "*(N points, about A–B min)*"
(written by scripts/exercise_points.py): N must be the sum of the nbgrader points of the
exercise's graded cells, A–B its row of book/instructors/exercise_times.md, and the line
must survive into the student edition. The points rule that assigning.md states holds.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("book/*/exercises.ipynb"))
TIMES = (ROOT / "book" / "instructors" / "exercise_times.md").read_text()
SHOWN = re.compile(r"^\*\((\d+) points?, about (\d+)–(\d+) min\)\*$", re.M)
LABEL = re.compile(r"^:label:\s*(\S+)", re.M)


def exercises(nb):
    """(label, exercise cell, the cells up to the next exercise or section) for each."""
    found, current = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(
            ("```{exercise}", "````{exercise}")
        ):
            current = (LABEL.search(cell.source).group(1), cell, [])
            found.append(current)
        elif cell.cell_type == "markdown" and cell.source.startswith("#"):
            current = None
        elif current is not None:
            current[2].append(cell)
    return found


def table_rows() -> dict[str, tuple[str, str]]:
    return {
        label: (low, high)
        for label, low, high in re.findall(
            r"\{ref\}`([^`]+)`\s*\|[^|]*\|\s*(\d+)–(\d+)\s*\|", TIMES
        )
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_each_exercise_shows_its_nbgrader_points_and_its_time(path):
    rows = table_rows()
    for label, cell, rest in exercises(nbformat.read(path, as_version=4)):
        shown = SHOWN.findall(cell.source)
        assert len(shown) == 1, f"{label} shows no (or several) points lines"
        points, low, high = shown[0]
        metadata_points = sum(
            c.metadata["nbgrader"]["points"]
            for c in rest
            if c.metadata.get("nbgrader", {}).get("grade")
        )
        assert int(points) == metadata_points, label
        assert metadata_points >= 1, f"{label} is worth nothing"
        assert (low, high) == rows[label], label


def test_every_row_of_the_times_page_is_an_exercise_and_back():
    labels = {label for p in NOTEBOOKS for label, _, _ in exercises(nbformat.read(p, 4))}
    assert labels == set(table_rows())


def test_the_script_agrees():
    assert load_script("exercise_points").main(["--check"]) == 0


def test_the_student_edition_shows_the_line():
    student_edition = load_script("student_edition")
    nb = nbformat.read(ROOT / "book" / "gans" / "exercises.ipynb", as_version=4)
    text = "\n".join(c.source for c in student_edition.strip_notebook(nb).cells)
    assert "*(2 points, about 20–30 min)*" in text  # the Fréchet distance: check + derivation


def test_points_rule_of_the_instructor_page():
    """1 per check call, 1 per numbered part (at least 1) of a text exercise, 1 per
    exploration, and 1 for the written cell after a code solution exactly when the
    exercise also asks a question ("?") or a derivation ("show that"), else 0."""
    for path in NOTEBOOKS:
        for label, cell, rest in exercises(nbformat.read(path, as_version=4)):
            graded = [c for c in rest if c.metadata.get("nbgrader", {}).get("grade")]
            code = [c for c in rest if c.cell_type == "code" and c.metadata.get("nbgrader")]
            asks = "?" in cell.source or re.search(r"\bshow that\b", cell.source, re.I)
            for c in graded:
                points = c.metadata["nbgrader"]["points"]
                if c.cell_type == "code" and not c.metadata["nbgrader"]["solution"]:
                    assert points == len(re.findall(r"^check_\w+\(", c.source, re.M)), label
                elif c.cell_type == "code":
                    assert points == 1, label  # an exploration
                elif code:
                    assert points == (1 if asks else 0), label
                else:
                    parts = len(re.findall(r"^\d+\.\s", cell.source, re.M))
                    assert points == max(1, parts), label


def test_the_instructor_page_says_what_a_new_instructor_needs():
    page = (ROOT / "book" / "instructors" / "assigning.md").read_text()
    assert not re.search(r"^nbgrader formgrader", page, re.M), "not an nbgrader command"
    for needed in (
        "Nbgrader → Formgrader",  # the formgrader of JupyterLab 4
        "source .venv/bin/activate",  # nbgrader runs alembic by name
        "delete `gradebook.db`",  # the way out of a half-made gradebook
        "writes nothing to stderr",  # how nbgrader scores a check cell
        "### BEGIN HIDDEN TESTS",  # the two kinds of tests
        "formative",
        "Where the model solutions are",
        "scripts/exercise_points.py",
    ):
        assert needed in page, needed
