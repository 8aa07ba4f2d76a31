"""scripts/fill_cache.py: the claims by which two CI lanes share the book's notebooks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fill_cache", ROOT / "scripts" / "fill_cache.py")
fill_cache = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fill_cache)


def test_a_notebook_is_claimed_once(tmp_path):
    notebook = ROOT / "book" / "gans" / "dcgan.ipynb"
    assert fill_cache.claim(tmp_path, notebook)
    assert not fill_cache.claim(tmp_path, notebook), "a second claim must fail"
    assert (tmp_path / "gans-dcgan").read_text() == str(os.getpid())
    # another notebook of the same name in another chapter is another claim
    assert fill_cache.claim(tmp_path, ROOT / "book" / "vae" / "dcgan.ipynb")


def test_waiting_ends_when_done_or_when_the_claimer_died(tmp_path):
    notebook = ROOT / "book" / "gans" / "dcgan.ipynb"
    assert not fill_cache.pending(tmp_path, notebook), "nobody claimed it"
    fill_cache.claim(tmp_path, notebook)
    assert fill_cache.pending(tmp_path, notebook), "claimed by this live process"
    (tmp_path / "gans-dcgan.done").write_text("{}")
    assert not fill_cache.pending(tmp_path, notebook), "done"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    other = ROOT / "book" / "gans" / "the_game.ipynb"
    (tmp_path / "gans-the_game").write_text(dead)
    assert not fill_cache.pending(tmp_path, other), "its process is gone: do not wait"


def test_the_notebooks_are_the_books_and_the_timeout_its_own():
    names = [p.relative_to(ROOT).as_posix() for p in fill_cache.toc_notebooks()]
    assert "book/gans/dcgan.ipynb" in names and all(n.endswith(".ipynb") for n in names)
    assert fill_cache.book_timeout() > 60, "the book's own timeout, not a default"


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_a_filled_notebook_is_found_in_the_cache_as_myst_nb_looks_for_it(tmp_path):
    cache = get_cache(str(tmp_path / "cache"))
    good = _notebook(tmp_path / "good.ipynb", "print(6 * 7)")
    assert fill_cache.fill(good, cache, timeout=120, claims=tmp_path)
    record = cache.match_cache_notebook(nbformat.read(good, as_version=4))  # MyST-NB's lookup
    assert record.data["execution_seconds"] > 0
    _, merged = cache.merge_match_into_notebook(nbformat.read(good, as_version=4))
    assert merged.cells[0].outputs[0]["text"] == "42\n"
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken')")
    assert not fill_cache.fill(bad, cache, timeout=120, claims=tmp_path)
    assert not fill_cache._in_cache(cache, nbformat.read(bad, as_version=4)), "not cached"
    assert any(tmp_path.glob("*-bad.done")), "the failure is recorded for the waiting lane"
