"""The student-environment run: every notebook as a student runs it, outside the repository.

A student opens a notebook from the book's launch button (Colab) or downloads it
and runs it after a plain ``pip install``: nothing of this repository is around
it. This script reproduces that:

1. build the package's wheel (reported with its size; it must stay under 40 MB);
2. create a fresh virtual environment (``_build/student-env/venv``) holding only
   torch (the CPU build on this machine's disk, as Colab has torch preinstalled:
   never a multi-GB CUDA build here), the minimum to execute notebooks (nbclient,
   ipykernel) and the package's dependencies, which pip resolves from the wheel's
   ranges as a student's pip would (the constraints file is not used); the wheel
   itself is uninstalled again, so that the notebooks' own install cells install it
   (finding its dependencies present, as on Colab's image);
3. build the Jupyter edition (``scripts/jupyter_edition.py``: the notebooks as
   Colab shows them);
4. for each notebook: copy it alone into an empty temporary folder and execute it
   there in fast mode, with a stub
   ``google.colab`` module imported at the kernel's start, so that the install
   cell's Colab path installs the wheel (``COMPANION_INSTALL_SOURCE``). The companion
   is uninstalled before the first notebook of each chapter that a worker runs, so
   that every chapter's install cell installs the wheel for real; the chapter's other
   notebooks run the same cell (``scripts/install_cell.py --check`` keeps the cells
   identical), which then finds it installed, as on a Binder or local install. With
   ``--workers N`` (default 2) N notebooks run at once, each worker in its own copy
   of the environment, so that one worker's uninstall never meets another's
   notebook; a notebook's time then includes its share of the machine with the
   other worker (the report records N);
5. print a table (seconds in all, seconds of the cells after the install cell,
   pass/fail, first error line) and write it to ``_build/student-env/report.json``
   and ``report.md``; the notebook timing report reads the fast-mode times from it.

    python scripts/student_env.py                 # every notebook
    python scripts/student_env.py book/pca        # the notebooks under a folder
    python scripts/student_env.py --keep-venv     # reuse the environment of a previous run
    python3 scripts/student_env.py --prepare      # only the environments (CI: beside make)
    python scripts/student_env.py --workers 1     # one notebook at a time (quiet timings)

Exit status 1 if any notebook failed or the wheel is too large.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from install_cell import REQUIREMENT, SOURCE_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student-env"
# 30 MB until the flows chapter: its two 7M-parameter flows (RealNVP, MAF) ship 26.6 MB of
# float16 weights and the wheel reached 34 MB. Smaller options (int8 flow weights, weights
# fetched on first use) would change what the records measured; see book/instructors/release.md.
WHEEL_LIMIT_MB = 40.0
TORCH = "torch==2.13.0"  # the CPU build on this kind of machine (ci/constraints.txt)
TOOLING = ["nbclient>=0.10", "ipykernel>=6"]  # what executes a notebook, nothing more
NOTEBOOK_TIMEOUT = 900

# Run at the kernel's start (sitecustomize), so that "google.colab" is in sys.modules
# as on Colab and the install cell takes its Colab path: the real module where it is
# installed (Colab's image), else an empty stand-in (the google namespace is untouched).
SITECUSTOMIZE = """\
# The student-environment run's Colab stand-in (scripts/student_env.py).
import sys
import types

try:
    import google.colab  # noqa: F401
except Exception:  # not installed, or it needs a real Colab session
    sys.modules["google.colab"] = types.ModuleType("google.colab")
"""

# Runs inside the student environment: executes one notebook in the current folder and
# prints, as its last line, the seconds its cells took after the install cell (from the
# timestamps nbclient records), so that the timing report leaves the pip install out.
RUNNER = """
import json, sys
from datetime import datetime
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name="python3",
                        resources={"metadata": {"path": "."}})
try:
    client.execute()
finally:
    nbformat.write(nb, sys.argv[1])
    seconds, code_cells = 0.0, 0
    for cell in nb.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in stamps:
            continue
        code_cells += 1
        if code_cells == 1:
            continue  # the install cell
        start = datetime.fromisoformat(stamps["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(stamps["shell.execute_reply"].replace("Z", "+00:00"))
        seconds += (end - start).total_seconds()
    print(json.dumps({"cells_seconds": round(seconds, 1)}))
"""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)


def build_wheel(out: Path) -> Path:
    wheels = out / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        stdout=subprocess.DEVNULL,
    )
    (wheel,) = wheels.glob("companion-*.whl")
    return wheel


def create_venv(venv: Path, torch_index_url: str | None = None) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # Here pip takes the CPU build from this machine's disk; elsewhere (GitHub's runners)
    # --torch-index-url https://download.pytorch.org/whl/cpu keeps it from a CUDA build.
    run([*pip, TORCH, *(["--index-url", torch_index_url] if torch_index_url else [])])
    run([*pip, *TOOLING])
    return python


def install_dependencies(python: Path, wheel: Path) -> None:
    """Install what the install cell's requirement needs into ``python``'s environment.

    The requirement is the install cell's (``companion[notebooks] @ <wheel>``), so pip
    resolves the same dependencies from the wheel's metadata as a student's pip does;
    the companion itself is uninstalled again, for the install cells to install.
    """
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "install", "--quiet", f"{REQUIREMENT} @ {wheel.as_uri()}"])
    run([*pip, "uninstall", "--quiet", "-y", "companion"])


def worker_venvs(python: Path, workers: int, keep: bool = False) -> list[Path]:
    """One interpreter per worker: the environment of ``python`` and copies of it.

    A copy (``<venv>-<i>``) is only ever run as ``<copy>/bin/python -m ...``, which
    finds its own site-packages, so the absolute paths in its scripts do not matter.
    ``keep``: reuse a copy that exists (made by ``--prepare``).
    """
    venv = python.parent.parent
    pythons = [python]
    for i in range(1, workers):
        copy = venv.with_name(f"{venv.name}-{i}")
        if not (keep and (copy / "bin" / python.name).exists()):
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(venv, copy, symlinks=True)
        pythons.append(copy / "bin" / python.name)
    return pythons


def stub_folder(out: Path) -> Path:
    """A folder for PYTHONPATH whose sitecustomize.py puts google.colab in sys.modules."""
    folder = out / "colab-stub"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def first_error_line(text: str) -> str:
    """The most telling line of a failure: the exception line of the last traceback."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and not line.startswith("File "):
            return line[:300]
    return lines[-1][:300] if lines else ""


def execute(
    python: Path, notebook: Path, name: str, env: dict[str, str], *, fresh: bool = True
) -> dict:
    """Execute ``notebook`` alone in an empty folder; returns its row of the report.

    ``fresh``: uninstall the companion first, so that the install cell installs it.
    """
    if fresh:
        run(
            [str(python), "-m", "pip", "uninstall", "--quiet", "-y", "companion"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    with tempfile.TemporaryDirectory(prefix="student-") as folder:
        copy = Path(folder) / notebook.name
        shutil.copy2(notebook, copy)
        start = time.perf_counter()
        result = subprocess.run(
            [str(python), "-c", RUNNER, copy.name, str(NOTEBOOK_TIMEOUT)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        left_behind = sorted(p.name for p in Path(folder).iterdir() if p.name != copy.name)
    last = result.stdout.strip().splitlines()[-1:] or ["{}"]
    try:
        cells_seconds = json.loads(last[0]).get("cells_seconds")
    except json.JSONDecodeError:
        cells_seconds = None
    row = {
        "notebook": name,
        "seconds": round(seconds, 1),
        "cells_seconds": cells_seconds,
        "installed_by_its_cell": fresh,
        "status": "pass" if result.returncode == 0 else "fail",
        "error": "" if result.returncode == 0 else first_error_line(result.stderr),
        "files_written_in_folder": left_behind,
    }
    return row


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| notebook | seconds | of which cells | status | first error line |",
        "|---|---:|---:|---|---|",
    ]
    for row in rows:
        error = row["error"].replace("|", "\\|")
        cells = "" if row["cells_seconds"] is None else f"{row['cells_seconds']:.1f}"
        lines.append(
            f"| {row['notebook']} | {row['seconds']:.1f} | {cells} | {row['status']} | {error} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="run only the notebooks under these paths")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--keep-venv",
        action="store_true",
        help="reuse out/venv and its worker copies where they exist",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only create the environments (venv, dependencies, worker copies) and stop; "
        "needs nothing but the standard library, so CI runs it beside `make`",
    )
    parser.add_argument(
        "--python",
        type=Path,
        help="run the notebooks with this interpreter instead of a fresh venv (Colab's image)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="notebooks run at once, each in its own copy of the environment (default 2)",
    )
    parser.add_argument("--torch-index-url", help="pip index for torch (a CPU-only index)")
    parser.add_argument(
        "--install-source",
        help="the pip URL the install cell installs (default: the wheel built from this tree)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers={args.workers}: give 1 or more")
    if args.prepare and (args.python is not None or args.keep_venv or args.only):
        parser.error(
            "--prepare creates the environments afresh and runs no notebook: "
            "leave out --python, --keep-venv and the notebook paths"
        )
    if args.python is not None and args.workers > 1:
        parser.error(
            f"--python with --workers={args.workers}: workers need their own copies of a "
            "venv, and --python is an interpreter this script does not own; add --workers 1"
        )
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    wheel = build_wheel(out)
    wheel_mb = wheel.stat().st_size / 2**20
    print(f"wheel: {wheel.name}, {wheel_mb:.1f} MB (limit {WHEEL_LIMIT_MB:.0f} MB)", flush=True)
    source = args.install_source or wheel.as_uri()

    kept = False
    if args.python is not None:
        python = args.python
    else:
        python = out / "venv" / "bin" / "python"
        kept = args.keep_venv and python.exists()
        if not kept:
            python = create_venv(out / "venv", args.torch_index_url)
            install_dependencies(python, wheel)
    if args.prepare:
        worker_venvs(python, args.workers)
        print(f"environments ready in {time.perf_counter() - started:.0f} s: {out}")
        return 0
    setup_seconds = time.perf_counter() - started

    edition = out / "jupyter-edition"
    run([sys.executable, str(ROOT / "scripts" / "jupyter_edition.py"), "--out", str(edition)])
    notebooks = sorted((edition / "book").rglob("*.ipynb"))
    if args.only:
        wanted = [Path(p).resolve().relative_to(ROOT).as_posix() for p in args.only]
        notebooks = [
            p
            for p in notebooks
            if any(p.relative_to(edition).as_posix().startswith(w) for w in wanted)
        ]

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV", SOURCE_VARIABLE}
    }
    env.update(
        COMPANION_FAST="1",
        **{SOURCE_VARIABLE: source},
        PYTHONPATH=str(stub_folder(out)),
        MPLBACKEND="Agg",
    )
    pythons = queue.Queue()
    # a worker's copy is reused only beside the venv it was copied from, never a new one
    for worker_python in worker_venvs(python, args.workers, keep=kept):
        pythons.put(worker_python)
    chapters_installed: set[tuple[Path, str]] = set()  # (worker, chapter) with a real install

    def run_one(notebook: Path) -> dict:
        name = notebook.relative_to(edition).as_posix()
        chapter = notebook.parent.relative_to(edition).as_posix()
        worker_python = pythons.get()
        try:
            fresh = (worker_python, chapter) not in chapters_installed
            chapters_installed.add((worker_python, chapter))
            path = f"{worker_python.parent}{os.pathsep}{env.get('PATH', '')}"
            row = execute(worker_python, notebook, name, {**env, "PATH": path}, fresh=fresh)
        finally:
            pythons.put(worker_python)
        print(f"{row['status']:4} {row['seconds']:7.1f} s  {name}  {row['error']}", flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_one, notebooks))

    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, json; "
            "print(json.dumps({p: m.version(p) for p in "
            "('companion', 'torch', 'numpy', 'matplotlib', 'scikit-learn', 'scipy', 'pandas')}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = {
        "wheel": wheel.name,
        "install_source": source if args.install_source else "the wheel",
        "wheel_mb": round(wheel_mb, 2),
        "wheel_limit_mb": WHEEL_LIMIT_MB,
        "python": platform.python_version(),
        "installed": json.loads(versions.stdout),
        "setup_seconds": round(setup_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "mode": "fast",
        "workers": args.workers,
        "notebooks": rows,
        "failed": [row["notebook"] for row in rows if row["status"] != "pass"],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(rows)
    (out / "report.md").write_text(table + "\n")
    print(table)
    print(
        f"{len(rows) - len(report['failed'])} of {len(rows)} notebooks passed; "
        f"wheel {wheel_mb:.1f} MB; installed {report['installed']}; "
        f"{report['total_seconds']:.0f} s in all"
    )
    too_big = wheel_mb > WHEEL_LIMIT_MB
    if too_big:
        print(f"the wheel is {wheel_mb:.1f} MB, over the {WHEEL_LIMIT_MB:.0f} MB limit")
    return 1 if report["failed"] or too_big or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
