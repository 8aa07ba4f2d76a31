"""An exercises notebook goes through nbgrader as the instructor guide says it does.

In a fresh course directory: ``nbgrader generate_assignment`` on a real chapter's
exercises notebook must give a release with stubs and no solution code; then
``nbgrader autograde`` must give 0 points on the autograded cells to a submission
equal to the release, and full points to one with the solutions pasted back.
Needs the ``instructor`` extra (nbgrader).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

pytest.importorskip("nbgrader", reason="nbgrader is not installed: pip install -e '.[instructor]'")

# The course fixture runs nbgrader five times (each may take up to 300 s, see nbgrader()),
# inside the first test's time: more than the suite's 300 s per test in pyproject.toml.
pytestmark = pytest.mark.timeout(1800)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "vae"  # its checks need no data set; the β sweep trains three small VAEs
ASSIGNMENT = "vae-exercises"
jupyter_edition = load_script("jupyter_edition")


def with_venv_on_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this interpreter's bin folder first on PATH (nbgrader runs ``alembic``)."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(env, PATH=os.pathsep.join([bin_dir, env.get("PATH", "")]))


def nbgrader(course: Path, *args: str) -> None:
    env = with_venv_on_path(dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"nbgrader {args[0]} failed:\n{result.stdout}\n{result.stderr}"


def solution_region_lines(nb) -> list[str]:
    """The non-blank lines inside the solution regions of the code cells."""
    found, inside = [], False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.split("\n"):
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and line.strip():
                found.append(line.strip())
    return found


def scores(course: Path, student: str, monkeypatch) -> dict[str, tuple[float | None, float]]:
    """grade id -> (automatic score, maximum) of every autograded test cell."""
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", with_venv_on_path(dict(os.environ))["PATH"])
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook("exercises", ASSIGNMENT, student)
        return {
            grade.name: (grade.auto_score, grade.max_score)
            for grade in notebook.grades
            if grade.cell.cell_type == "code" and not grade.cell.name.endswith("-solution")
        }


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory with the chapter's notebook released and two submissions graded."""
    course = tmp_path_factory.mktemp("course")
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'book'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 120\n"
    )
    source = course / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    # The instructor releases the Jupyter edition (plain Markdown), as assigning.md says.
    edition = jupyter_edition.Edition.of_book(ROOT)
    nbformat.write(
        edition.notebook(ROOT / "book" / CHAPTER / "exercises.ipynb"), source / "exercises.ipynb"
    )
    nbgrader(course, "db", "student", "add", "blank")
    nbgrader(course, "db", "student", "add", "solved")
    nbgrader(course, "generate_assignment", ASSIGNMENT)

    release = nbformat.read(course / "release" / ASSIGNMENT / "exercises.ipynb", as_version=4)
    original = nbformat.read(source / "exercises.ipynb", as_version=4)
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in original.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    solved = nbformat.from_dict(release)
    for cell in solved.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    for student, nb in (("blank", release), ("solved", solved)):
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "exercises.ipynb")
        nbgrader(course, "autograde", ASSIGNMENT, "--student", student)
    return course


def test_release_has_stubs_and_no_solution_code(course):
    original = nbformat.read(course / "source" / ASSIGNMENT / "exercises.ipynb", as_version=4)
    release = nbformat.read(course / "release" / ASSIGNMENT / "exercises.ipynb", as_version=4)
    solution = solution_region_lines(original)
    assert len(solution) >= 8
    code = "\n".join(c.source for c in release.cells if c.cell_type == "code")
    release_lines = {line.strip() for line in code.split("\n")}
    assert [line for line in solution if line in release_lines] == []
    assert "### BEGIN SOLUTION" not in code
    assert "BEGIN HIDDEN TESTS" not in code and "END HIDDEN TESTS" not in code
    assert sum(c.source.count("### BEGIN HIDDEN TESTS") for c in original.cells) >= 1
    n_regions = sum(c.source.count("### BEGIN SOLUTION") for c in original.cells)
    assert code.count("# YOUR CODE HERE\n") == n_regions
    assert code.count("raise NotImplementedError()") == n_regions
    markdown = [c.source for c in release.cells if c.cell_type == "markdown"]
    assert not any("{solution}" in text for text in markdown)
    assert "YOUR ANSWER HERE" in markdown
    macros = list(jupyter_edition.macros(jupyter_edition.load_config(ROOT)))
    leftovers = {i: jupyter_edition.leftovers(text, macros) for i, text in enumerate(markdown)}
    assert {i: found for i, found in leftovers.items() if found} == {}, (
        "the release shows MyST syntax that JupyterLab and nbgrader print as raw text"
    )


def test_release_as_submitted_scores_zero(course, monkeypatch):
    graded = scores(course, "blank", monkeypatch)
    assert len(graded) >= 5
    assert {name: score for name, (score, _) in graded.items()} == dict.fromkeys(graded, 0)


def test_solutions_pasted_back_score_full_points(course, monkeypatch):
    graded = scores(course, "solved", monkeypatch)
    assert len(graded) >= 5
    assert {name: score for name, (score, _) in graded.items()} == {
        name: maximum for name, (_, maximum) in graded.items()
    }
