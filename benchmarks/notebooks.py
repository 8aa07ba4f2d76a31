"""Every notebook's run time, in full and fast mode, against the chapters' budgets.

    python benchmarks/notebooks.py  # both modes; writes companion/pretrained/records/notebooks.json
    python benchmarks/notebooks.py --modes fast --out /tmp/nb.json
    python benchmarks/notebooks.py --from-builds --out _build/notebooks.json   # (CI)

With ``--from-builds`` nothing is executed: the full-mode times come from the book
build (``_build/notebook_runs.json``, written by book/_ext/exec_record.py from the
runs of ``make book``) and the fast-mode times from the student-environment run
(``_build/student-env/report.json``: the notebook's cells, the install cell left
out), so that CI executes every notebook once per mode.

Each notebook listed in ``_toc.yml`` runs in a fresh kernel from its own folder
(as the book build runs it), with ``COMPANION_FAST`` set to 1 or 0. The time
of each, the sum per chapter against the chapter's budget (from its issue)
and the whole book against its 20-minute budget are written to
``companion/pretrained/records/notebooks.json`` and shown on the book's Benchmarks page.
The script exits with status 1 when a notebook fails. Over-budget chapters and
a book over its budget are reported (printed, and ``within_budget`` false in the
results), not failed: this is a report, not a timed test, since the times depend
on the machine, its load and its thread settings, which are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import torch
import yaml
from common import machine_info
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BOOK_BUDGET_S = 20 * 60
# full-mode / fast-mode budgets per chapter folder, in seconds, as their issues set them
CHAPTER_BUDGETS_S = {
    "autoencoders": {"full": 300, "fast": 60},
    "vae": {"full": 240},
    "gans": {"full": 300},
    "evaluation": {"full": 240},
}


def toc_files(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` in order, as paths without their suffix (``book/pca/index``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks (``.ipynb``) of the book, in table-of-contents order."""
    return [root / f"{f}.ipynb" for f in toc_files(root) if (root / f"{f}.ipynb").exists()]


def run(path: Path, fast: bool, timeout: int) -> tuple[float, str | None]:
    """Execute one notebook; returns (seconds, error message or None)."""
    os.environ["COMPANION_FAST"] = "1" if fast else "0"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - report every failure, keep timing the rest
        return time.perf_counter() - start, f"{type(err).__name__}: {str(err)[-300:]}"
    return time.perf_counter() - start, None


def from_builds(
    notebooks: list[Path], runs_file: Path, student_file: Path
) -> tuple[dict[str, dict], list[str]]:
    """Rows and failures read from the book build's and the student run's records."""
    for path, made_by in ((runs_file, "make book"), (student_file, "make student-env")):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; run `{made_by}` first.")
    runs = json.loads(runs_file.read_text())
    student = {r["notebook"]: r for r in json.loads(student_file.read_text())["notebooks"]}
    rows: dict[str, dict] = {}
    failures = []
    for path in notebooks:
        name = path.relative_to(ROOT / "book").as_posix()
        docname = path.relative_to(ROOT).with_suffix("").as_posix()
        full, fast = runs.get(docname), student.get(path.relative_to(ROOT).as_posix())
        if full is None or full.get("seconds") is None or fast is None:
            failures.append(f"{name}: no record of its run (full: {full}, fast: {fast})")
            continue
        rows[name] = {"full_s": round(full["seconds"], 1), "full_method": full["method"]}
        rows[name]["fast_s"] = fast["cells_seconds"] or fast["seconds"]
        for mode, ok, error in (
            ("full", full.get("succeeded"), "failed in the book build"),
            ("fast", fast["status"] == "pass", fast.get("error")),
        ):
            if not ok:
                rows[name][f"{mode}_error"] = error
                failures.append(f"{name} ({mode}): {error}")
        print(f"{rows[name]['full_s']:7.1f} s full  {rows[name]['fast_s']:7.1f} s fast  {name}")
    return rows, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", nargs="+", default=["full", "fast"], choices=["full", "fast"])
    parser.add_argument("--timeout", type=int, default=900, help="seconds per notebook")
    parser.add_argument(
        "--from-builds",
        action="store_true",
        help="read the times of `make book` and `make student-env` instead of executing",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "companion" / "pretrained" / "records" / "notebooks.json")
    )
    args = parser.parse_args()
    notebooks = toc_notebooks()
    load_before = os.getloadavg()
    rows: dict[str, dict] = {}
    failures = []
    student_workers = None
    if args.from_builds:
        args.modes = ["full", "fast"]
        student_report = ROOT / "_build" / "student-env" / "report.json"
        if student_report.exists():
            student_workers = json.loads(student_report.read_text()).get("workers", 1)
        rows, failures = from_builds(
            notebooks,
            ROOT / "_build" / "notebook_runs.json",
            ROOT / "_build" / "student-env" / "report.json",
        )
    for mode in [] if args.from_builds else args.modes:
        for path in notebooks:
            name = path.relative_to(ROOT / "book").as_posix()
            seconds, error = run(path, fast=mode == "fast", timeout=args.timeout)
            rows.setdefault(name, {})[f"{mode}_s"] = round(seconds, 1)
            if error:
                rows[name][f"{mode}_error"] = error
                failures.append(f"{name} ({mode}): {error}")
            print(f"{mode:4s} {seconds:7.1f} s  {name}" + (f"  FAILED {error}" if error else ""))
    chapters: dict[str, dict] = {}
    for name, row in rows.items():
        chapter = name.split("/")[0] if "/" in name else "(front and back matter)"
        entry = chapters.setdefault(chapter, {})
        for mode in args.modes:
            entry[f"{mode}_s"] = round(entry.get(f"{mode}_s", 0.0) + row[f"{mode}_s"], 1)
    for chapter, entry in chapters.items():
        for mode, budget in CHAPTER_BUDGETS_S.get(chapter, {}).items():
            if f"{mode}_s" in entry:
                entry[f"{mode}_budget_s"] = budget
                entry[f"{mode}_within_budget"] = entry[f"{mode}_s"] <= budget
    totals = {f"{m}_s": round(sum(r[f"{m}_s"] for r in rows.values()), 1) for m in args.modes}
    book_ok = totals.get("full_s", 0.0) <= BOOK_BUDGET_S
    results = {
        "machine": machine_info(torch.device("cpu")),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        "command": "python benchmarks/notebooks.py "
        + ("--from-builds" if args.from_builds else "--modes " + " ".join(args.modes)),
        "conditions": (
            "read from the book's execution records (full: each notebook executed once, by "
            "make book or by scripts/fill_cache.py into the book's cache) and from make "
            f"student-env (fast, {student_workers} notebooks at once), which CI runs side by "
            "side, one thread per process: the times include the machine shared with the "
            "other run; `--modes full fast` times each notebook alone"
            if args.from_builds
            else "each notebook executed alone, one after the other"
        ),
        "notebooks": rows,
        "chapters": chapters,
        "book": {**totals, "full_budget_s": BOOK_BUDGET_S, "full_within_budget": book_ok},
        "failures": failures,
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"chapters": chapters, "book": results["book"]}, indent=2))
    print(f"written to {args.out}")
    for chapter, entry in chapters.items():
        for mode in args.modes:
            if entry.get(f"{mode}_within_budget") is False:
                print(f"over budget: {chapter} ({mode}) {entry[f'{mode}_s']} s", file=sys.stderr)
    if failures:
        print("notebooks failed:\n" + "\n".join(failures), file=sys.stderr)
    if not book_ok:
        print(
            f"the whole book took {totals['full_s']} s in full mode, over its "
            f"{BOOK_BUDGET_S} s budget",
            file=sys.stderr,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
