"""Show each exercise's points and time in its statement: "*(2 points, about 15–25 min)*".

Students never see nbgrader's metadata, so each ``{exercise}`` cell of
``book/<chapter>/exercises.ipynb`` gets a line, right after its options, with

* the points: the sum of the nbgrader ``points`` of the graded cells that belong to
  the exercise (its answer cell, its check cell, the answer to its question), read from
  the notebook's metadata, so the line is what nbgrader will give;
* the time: the minutes of its row in ``book/instructors/exercise_times.md``.

Run it after changing points (metadata) or times (the page); ``--check`` only reports
(``tests/test_exercises_points.py`` runs it). The line is ordinary text of the exercise,
so the book, the Jupyter edition, the student edition and the nbgrader release show it.

Usage: ``python scripts/exercise_points.py [--check] [notebooks...]``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
TIMES = ROOT / "book" / "instructors" / "exercise_times.md"
LABEL = re.compile(r"^:label:\s*(\S+)\s*$", re.M)
ROW = re.compile(r"^\|\s*\{ref\}`([^`]+)`\s*\|[^|]*\|\s*([0-9]+[–-][0-9]+)\s*\|", re.M)
LINE = re.compile(r"^\*\((\d+) points?, about ([0-9]+[–-][0-9]+) min\)\*$", re.M)


def minutes(times_page: Path = TIMES) -> dict[str, str]:
    """Exercise label -> "15–25", from the tables of exercise_times.md."""
    return {label: span.replace("-", "–") for label, span in ROW.findall(times_page.read_text())}


def is_exercise(cell) -> bool:
    return cell.cell_type == "markdown" and "{exercise}" in cell.source.split("\n", 1)[0]


def exercise_points(nb) -> dict[str, int]:
    """Exercise label -> the points of the graded cells between it and the next exercise."""
    points: dict[str, int] = {}
    label = None
    for cell in nb.cells:
        if is_exercise(cell):
            label = LABEL.search(cell.source).group(1)
            points[label] = 0
        elif cell.cell_type == "markdown" and cell.source.startswith("#"):
            label = None  # a new section: nothing below belongs to the last exercise
        elif label is not None:
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("grade"):
                points[label] += int(grading.get("points") or 0)
    return points


def points_line(points: int, span: str) -> str:
    return f"*({points} point{'s' if points != 1 else ''}, about {span} min)*"


def with_line(source: str, line: str) -> str:
    """The exercise's source with ``line`` as the first paragraph after its options."""
    source = LINE.sub("", source)
    lines = source.split("\n")
    i = 1
    while i < len(lines) and lines[i].startswith(":"):
        i += 1
    body = "\n".join(lines[i:]).lstrip("\n")
    return "\n".join(lines[:i] + ["", line, "", body])


def update(path: Path, times: dict[str, str]) -> bool:
    """Write the lines into one notebook; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    points = exercise_points(nb)
    changed = False
    for cell in filter(is_exercise, nb.cells):
        label = LABEL.search(cell.source).group(1)
        if label not in times:
            raise ValueError(f"{path}: {label} has no row in {TIMES.relative_to(ROOT)}")
        new = with_line(cell.source, points_line(points[label], times[label]))
        if new != cell.source:
            cell.source, changed = new, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="report, write nothing")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "book").glob("*/exercises.ipynb"))
    times = minutes()
    stale = []
    for path in notebooks:
        if args.check:
            nb = nbformat.read(path, as_version=4)
            points = exercise_points(nb)
            for cell in filter(is_exercise, nb.cells):
                label = LABEL.search(cell.source).group(1)
                expected = points_line(points[label], times.get(label, "?"))
                if with_line(cell.source, expected) != cell.source:
                    stale.append(f"{path}: {label} should show {expected}")
        elif update(path, times):
            print(f"updated {path}")
    if stale:
        print("\n".join(stale + ["run: python scripts/exercise_points.py"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
