"""Execute the book's notebooks into its execution cache, from several processes at once.

``make book`` executes every notebook that its execution cache (``_build/.jupyter_cache``,
MyST-NB's ``execute_notebooks: cache``) does not hold, one after the other. CI has two
cores, and one of them is free once ``make test`` is done; this script lets both work on
the full-mode notebooks. Each process takes the next notebook nobody has claimed (a file
created with O_EXCL under ``--claims``), executes it exactly as MyST-NB would (the
notebook's folder as working directory, the book's timeout, errors not allowed) and
stores it in the cache with its run time, as MyST-NB stores it. ``make book`` then finds
every notebook in the cache and executes none again: each notebook runs once.

    python scripts/fill_cache.py                 # claim and execute until none is left
    python scripts/fill_cache.py --wait          # then wait for the other processes' claims

Every process takes the notebooks longest first, by their full-mode seconds in the
shipped timing record (``companion/pretrained/records/notebooks.json``; a notebook it
does not list counts as the longest): when the queue runs dry, the processes are on
short notebooks and end close together, instead of one waiting for another's long one.

The theory pages are MyST text notebooks (``.md`` with a kernelspec, drawing their
figures at build time): they are read as MyST-NB reads them and filled too, so that
``make book`` executes nothing. Run ``make _build/.companion-stamp`` first: that target
empties the cache when the package changed, and would drop what this script stored. A
notebook that fails is not stored (``make book`` runs it again and reports the error);
the script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution
from myst_nb.core.read import is_myst_markdown_notebook, myst_nb_reader_plugin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from notebooks import toc_files  # noqa: E402  (benchmarks/ is not a package)

TIMING_RECORD = ROOT / "companion" / "pretrained" / "records" / "notebooks.json"
# how MyST-NB reads a MyST text notebook, for jupyter-cache (myst_nb.core.read)
MYST_READ_DATA = {"type": "plugin", "name": "myst_nb_md"}


def longest_first(paths: list[Path], record: dict, root: Path = ROOT) -> list[Path]:
    """``paths`` by their full-mode seconds in ``record`` (the timing record), longest
    first; those the record lacks come first, in their order (new notebooks: unknown)."""
    seconds = {name: row.get("full_s") for name, row in record.get("notebooks", {}).items()}

    def expected(path: Path) -> float:
        value = seconds.get(path.relative_to(root / "book").as_posix())
        return float("inf") if value is None else value

    return sorted(paths, key=expected, reverse=True)  # stable: ties keep their order


def load_timing() -> dict:
    """The shipped timing record, or {} where there is none."""
    return json.loads(TIMING_RECORD.read_text()) if TIMING_RECORD.exists() else {}


def book_notebooks(root: Path = ROOT) -> list[Path]:
    """What ``make book`` executes, in table-of-contents order: the ``.ipynb`` notebooks
    and the MyST text notebooks (``.md`` pages with notebook front matter)."""
    found = []
    for stem in toc_files(root):
        ipynb, md = root / f"{stem}.ipynb", root / f"{stem}.md"
        if ipynb.exists():
            found.append(ipynb)
        elif md.exists() and is_myst_markdown_notebook(md.read_text(encoding="utf-8")):
            found.append(md)
    return found


def read(path: Path):
    """The notebook as MyST-NB reads it (the same cells, so the same cache key)."""
    if path.suffix == ".md":
        return myst_nb_reader_plugin(str(path))
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)


def book_timeout(root: Path = ROOT) -> int:
    """The per-notebook timeout of the book's configuration (``execute.timeout``)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    return int(config.get("execute", {}).get("timeout", 30))


def shown(path: Path) -> str:
    """The notebook's path as printed: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def key(path: Path) -> str:
    """The notebook's name among the claims: its folder and file, e.g. ``gans-dcgan``."""
    return f"{path.parent.name}-{path.stem}"


def claim(claims: Path, path: Path) -> bool:
    """Take ``path`` for this process; False when another process has it already."""
    try:
        handle = os.open(claims / key(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(handle, str(os.getpid()).encode())
    os.close(handle)
    return True


def pending(claims: Path, path: Path) -> bool:
    """Claimed by a process that is still running it (not done, not dead)."""
    claimed, done = claims / key(path), claims / (key(path) + ".done")
    if not claimed.exists() or done.exists():
        return False
    try:
        os.kill(int(claimed.read_text() or 0), 0)
    except (ValueError, ProcessLookupError):
        return False  # its process died: make book will execute the notebook
    return True


def fill(path: Path, cache, timeout: int, claims: Path) -> bool:
    """Execute one notebook into the cache unless it is there; True unless it failed."""
    notebook = read(path)
    if _in_cache(cache, notebook):
        print(f"in the cache already: {shown(path)}", flush=True)
        return True
    record = cache.add_nb_to_project(
        str(path), **({"read_data": MYST_READ_DATA} if path.suffix == ".md" else {})
    )
    result = single_nb_execution(
        notebook, cwd=str(path.parent), allow_errors=False, timeout=timeout, meta_override=True
    )
    name = shown(path)
    done = claims / (key(path) + ".done")
    if result.err is not None:
        print(f"FAILED {name}: {result.err.__class__.__name__}\n{result.exc_string}", flush=True)
        done.write_text(json.dumps({"notebook": name, "failed": True}))
        return False
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, record.uri, data={"execution_seconds": result.time}),
        check_validity=False,
        overwrite=True,
    )
    print(f"{result.time:7.1f} s  {name}", flush=True)
    done.write_text(json.dumps({"notebook": name, "seconds": result.time}))
    return True


def _in_cache(cache, notebook) -> bool:
    try:
        return cache.match_cache_notebook(notebook) is not None
    except KeyError:  # jupyter-cache raises KeyError for no match
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", action="store_true", help="then wait for every claim")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument("--claims", type=Path, default=ROOT / "_build" / ".fill-claims")
    args = parser.parse_args()
    args.claims.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(args.cache))
    timeout = book_timeout()
    notebooks = longest_first(book_notebooks(), load_timing())
    ok = True
    for path in notebooks:
        if claim(args.claims, path):
            ok = fill(path, cache, timeout, args.claims) and ok
    if args.wait:  # until every claimed notebook is done (by this process or another)
        while any(pending(args.claims, p) for p in notebooks):
            time.sleep(2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
