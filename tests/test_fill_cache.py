"""scripts/fill_cache.py: the claims by which two CI lanes share the book's notebooks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from myst_nb.core.config import NbParserConfig
from myst_nb.core.read import create_nb_reader
from myst_parser.config.main import MdParserConfig

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
    names = [p.relative_to(ROOT).as_posix() for p in fill_cache.book_notebooks()]
    assert "book/gans/dcgan.ipynb" in names
    assert "book/pca/index.md" in names, "a theory page draws its figures: a text notebook"
    assert "book/references.md" not in names, "a plain Markdown page executes nothing"
    assert names.index("book/pca/index.md") < names.index("book/pca/pca_in_code.ipynb")
    assert fill_cache.book_timeout() > 60, "the book's own timeout, not a default"


def test_the_longest_notebooks_go_first_and_unknown_ones_count_as_longest():
    book = ROOT / "book"
    a, b, c, new = (book / f"ch/{n}.ipynb" for n in ("a", "b", "c", "new"))
    record = {"notebooks": {"ch/a.ipynb": {"full_s": 5.0}, "ch/b.ipynb": {"full_s": 50.0},
                            "ch/c.ipynb": {"full_s": 20.0}}}  # fmt: skip
    assert fill_cache.longest_first([a, b, c, new], record) == [new, b, c, a]
    assert fill_cache.longest_first([a, b], {}) == [a, b], "no record: the given order"
    shipped = fill_cache.longest_first(fill_cache.book_notebooks(), fill_cache.load_timing())
    named = [p.relative_to(book).as_posix() for p in shipped]
    assert named.index("gans/same_network.ipynb") < named.index("pca/exercises.ipynb")


def _myst_nb_reads(path: Path):
    """The notebook as the book's build reads it: MyST-NB's reader, the book's extensions."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    md_config = MdParserConfig(enable_extensions=set(config["parse"]["myst_enable_extensions"]))
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), md_config, NbParserConfig(), text)
    assert reader is not None, f"{path} is not a notebook to MyST-NB"
    return reader.read(text)


def test_every_theory_page_is_cached_under_the_key_the_book_looks_up(tmp_path):
    cache = get_cache(str(tmp_path / "cache"))
    pages = [p for p in fill_cache.book_notebooks() if p.suffix == ".md"]
    assert len(pages) >= 10
    for page in pages:
        ours, theirs = fill_cache.read(page), _myst_nb_reads(page)
        assert cache.create_hashed_notebook(ours)[1] == cache.create_hashed_notebook(theirs)[1]
        assert [c.source for c in ours.cells] == [c.source for c in theirs.cells], page


def _notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_a_filled_text_notebook_is_found_with_its_outputs(tmp_path):
    cache = get_cache(str(tmp_path / "cache"))
    page = tmp_path / "page.md"
    page.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# A page\n\nSome text.\n\n```{code-cell} python\nprint(6 * 7)\n```\n"
    )
    assert fill_cache.fill(page, cache, timeout=120, claims=tmp_path)
    _, merged = cache.merge_match_into_notebook(_myst_nb_reads(page))  # MyST-NB's lookup
    code = [c for c in merged.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"] == "42\n"


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
