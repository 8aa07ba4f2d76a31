"""The Jupyter edition (scripts/jupyter_edition.py): notebooks as Colab and nbgrader show them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

from companion import pretrained
from companion.models import GAN

ROOT = Path(__file__).resolve().parents[1]
edition_script = load_script("jupyter_edition")
Edition = edition_script.Edition


@pytest.fixture(scope="module")
def edition() -> Edition:
    return Edition.of_book(ROOT)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edition")
    edition_script.build(out, ROOT)
    return out


def test_every_notebook_is_in_the_edition(built):
    book = sorted(p.relative_to(ROOT) for p in (ROOT / "book").rglob("*.ipynb"))
    made = sorted(p.relative_to(built) for p in (built / "book").rglob("*.ipynb"))
    assert made == book
    assert (built / "environment.yml").read_text() == (ROOT / "environment.yml").read_text()


def test_the_edition_has_no_myst_syntax_and_no_book_only_macro(built):
    assert edition_script.check(built, ROOT) == []


def test_code_cells_are_unchanged(built):
    """The book's code cells come through as they are; the only new cells print the
    reader's glued numbers, one right after each Markdown cell that quotes them."""
    glued_pages = 0
    for path in (ROOT / "book").rglob("*.ipynb"):
        original = nbformat.read(path, as_version=4)
        converted = nbformat.read(built / path.relative_to(ROOT), as_version=4)
        added = [c for c in converted.cells if "show_glued(" in c.source and c.cell_type == "code"]
        assert [c.source for c in original.cells if c.cell_type == "code"] == [
            c.source for c in converted.cells if c.cell_type == "code" and c not in added
        ]
        quoting = [
            c for c in original.cells if c.cell_type == "markdown" and "{glue:text}" in c.source
        ]
        assert len(added) == len(quoting), path
        for cell, markdown in zip(added, quoting, strict=True):
            before = converted.cells[converted.cells.index(cell) - 1]
            assert before.cell_type == "markdown" and before.id == markdown.id
            names = edition_script.GLUE.findall(markdown.source)
            assert all(repr(n) in cell.source for n in names), (path, names)
            assert cell.metadata["jupyter"]["source_hidden"] is True
        glued_pages += bool(added)
    assert glued_pages >= 10  # the book quotes the reader's run on many pages


def test_show_glued_prints_the_reader_numbers_as_the_prose_formats_them(capsys):
    from companion.plot import glue, show_glued

    glue("edition_test_ratio", 0.123456)
    show_glued("edition_test_ratio:.2f", "edition_test_ratio", "edition_test_never_glued")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "edition_test_ratio = 0.12"
    assert out[1] == "edition_test_ratio = 0.123456"
    assert "not computed yet; run the cells above first" in out[2]


@pytest.mark.parametrize(
    ("markdown", "problem"),
    [
        ("See {doc}`the chapter <index>`.", "a MyST role"),
        ("```{exercise} Title\n:label: x\n\nBody\n```", "a MyST directive"),
        (":::{note}\nBody\n:::", "a MyST directive"),
        ("(my-label)=\n## Heading", "a MyST target"),
        ("$\\KL(p \\Vert q)$", "the macro \\KL (defined only in _config.yml)"),
        ("$\\E[x] \\in \\R$", "the macro \\E (defined only in _config.yml)"),
    ],
)
def test_the_check_finds_each_kind_of_leftover(markdown, problem):
    assert problem in edition_script.leftovers(markdown, ["R", "E", "KL"])
    assert edition_script.leftovers("$\\mathbb{E}[x]$ and $\\Eta$ and `code`", ["E"]) == []


def test_citations_become_author_year(edition):
    text = edition.markdown(
        "as {cite:p}`kingma2014autoencoding` showed; {cite:t}`goodfellow2014generative` argue",
        "book/x",
    )
    assert "(Kingma and Welling, 2014)" in text
    assert "Goodfellow et al. (2014) argue" in text
    with pytest.raises(KeyError, match="nosuchkey"):
        edition.markdown("{cite:p}`nosuchkey`", "book/x")


def test_references_become_links_to_the_published_page(edition):
    site = edition.site
    text = edition.markdown(
        "the {doc}`next notebook\n<mixtures_em>` explains", "book/clustering/kmeans"
    )
    assert f"[next notebook]({site}book/clustering/mixtures_em.html)" in text
    text = edition.markdown("by {prf:ref}`gan-thm-optimal-d`", "book/gans/exercises")
    assert re.search(
        rf"\[Theorem \([^)]*\)\]\({re.escape(site)}book/gans/index\.html#gan-thm-optimal-d\)", text
    ), text
    with pytest.raises(KeyError, match="no-such-label"):
        edition.markdown("{ref}`no-such-label`", "book/x")


def test_exercises_and_solutions_become_plain_blocks(edition):
    source = (
        "```{exercise} A title\n:label: ex-a\n\nProve $\\R^2$ is a plane.\n```\n\n"
        "```{solution} ex-a\n:label: sol-a\n:class: dropdown\n\nIt is.\n```"
    )
    text = edition.markdown(source, "book/x")
    assert "**Exercise (A title).** Prove $\\mathbb{R}^2$ is a plane." in text
    assert "<details>" in text and "It is." in text and "</details>" in text
    assert edition_script.leftovers(text, list(edition.macros)) == []


def test_literalinclude_shows_the_package_source(edition):
    """The included code is the object's real source (checked against inspect)."""
    options = {"pyobject": "GAN.loss", "language": "python"}
    text = edition.literalinclude("../../companion/models/gan.py", options, "book/gans/the_game")
    code = text.split("```python\n", 1)[1].rsplit("\n```", 1)[0]
    assert code == inspect.getsource(GAN.loss).rstrip("\n")


def test_literalinclude_of_a_function(edition):
    options = {"pyobject": "load_record"}
    text = edition.literalinclude("../companion/pretrained/loaders.py", options, "book/benchmarks")
    code = text.split("```python\n", 1)[1].rsplit("\n```", 1)[0]
    assert code == inspect.getsource(pretrained.load_record).rstrip("\n")
