"""scripts/browser_check.py: the pure parts always, the browser on tiny sites when it can.

The browser tests need /usr/bin/chromium and the playwright package and skip
with the reason otherwise; the whole built book is checked by ``make browser``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
site_pages = pytest.importorskip("site_pages")

CONFIG = {
    "repository": {"url": "https://github.com/org/book", "branch": "main", "path_to_book": ""},
    "launch_buttons": {
        "notebook_interface": "classic",
        "colab_url": "https://colab.research.google.com",
        "binderhub_url": "https://mybinder.org",
    },
}
COLAB = "https://colab.research.google.com/github/org/book/blob/main/book/nb.ipynb"
BINDER = "https://mybinder.org/v2/gh/org/book/main?urlpath=tree/book/nb.ipynb"
PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


# --- pure parts ---------------------------------------------------------------


def test_discover_pages_walks_parts_chapters_and_sections():
    toc = {
        "root": "book/intro",
        "parts": [
            {"caption": "A", "chapters": [{"file": "book/a.md"}]},
            {
                "caption": "B",
                "chapters": [
                    {
                        "file": "book/b/index",
                        "sections": [
                            {"file": "book/b/one", "sections": [{"file": "book/b/deep"}]},
                            {"url": "https://example.org", "title": "elsewhere"},
                        ],
                    }
                ],
            },
        ],
    }
    pages = site_pages.discover_pages(toc)
    assert [p.docname for p in pages] == [
        "book/intro",
        "book/a",
        "book/b/index",
        "book/b/one",
        "book/b/deep",
    ]
    assert [p.is_chapter_start for p in pages] == [True, True, True, False, False]
    assert {p.docname: p.chapter for p in pages}["book/b/deep"] == "book/b/index"


def test_discover_pages_reads_the_repository_toc():
    pages = site_pages.read_toc(ROOT / "_toc.yml")
    assert pages[0].is_chapter_start
    for page in pages:
        assert site_pages.find_source(page.docname, [ROOT]) is not None, page.docname


def test_discover_pages_rejects_glob_and_missing_root():
    with pytest.raises(ValueError, match="glob"):
        site_pages.discover_pages({"root": "x", "chapters": [{"glob": "book/*"}]})
    with pytest.raises(ValueError, match="root"):
        site_pages.discover_pages({"chapters": []})


def test_launch_urls_follow_repository_and_source_path():
    assert site_pages.launch_urls(CONFIG, "book/nb.ipynb") == {"colab": COLAB, "binder": BINDER}
    lab = {
        "repository": {
            "url": "https://github.com/org/book/",
            "branch": "dev",
            "path_to_book": "/d/",
        },
        "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": "https://b.org/"},
    }
    assert site_pages.launch_urls(lab, "x/nb.ipynb") == {
        "binder": "https://b.org/v2/gh/org/book/dev?urlpath=lab/tree/d/x/nb.ipynb"
    }


def test_launch_urls_off_or_bad_repository():
    assert site_pages.launch_urls({"repository": {"url": "nowhere"}}, "nb.ipynb") == {}
    bad = {**CONFIG, "repository": {"url": "https://gitlab.com/org/book"}}
    with pytest.raises(ValueError, match="gitlab.com"):
        site_pages.launch_urls(bad, "nb.ipynb")


def test_source_features_of_markdown_ignores_code():
    text = "\n".join(
        [
            "Cost: $5 to $10, no math.",
            "```python",
            "label = r'$\\alpha$'",
            "```{prf:theorem} not a directive inside code",
            "```",
            "````{prf:theorem} Title",
            "```{prf:proof}",
            "Inner.",
            "```",
            "````",
            ":::{exercise}",
            ":::",
            "```{solution} ex",
            "`$x$` inline code",
            "```",
        ]
    )
    features = site_pages.source_features(text, ".md")
    assert (features.n_proof, features.n_exercise, features.n_solution) == (2, 1, 1)
    assert not features.is_notebook
    assert features.has_math  # "$5 to $" reads as math, as dollarmath would parse it


def test_source_features_math_and_notebooks():
    assert not site_pages.source_features("No math here; `$x$` is code.", ".md").has_math
    assert site_pages.source_features("Let $x_i$ be", ".md").has_math
    assert site_pages.source_features("```{math}\nx\n```", ".md").has_math
    notebook = {
        "cells": [
            {"cell_type": "code", "source": ["print('$x$')"]},
            {"cell_type": "markdown", "source": ["Plain text."]},
        ]
    }
    features = site_pages.source_features(json.dumps(notebook), ".ipynb")
    assert features.is_notebook and not features.has_math
    notebook["cells"][1]["source"] = ["$$\n", "y\n", "$$"]
    assert site_pages.source_features(json.dumps(notebook), ".ipynb").has_math
    text_notebook = "---\njupytext:\n  formats: md:myst\nkernelspec:\n  name: python3\n---\n# T"
    assert site_pages.source_features(text_notebook, ".md").is_notebook


@pytest.mark.parametrize(
    "text",
    ["see $$x$$ here", "a \\(x\\) b", "\\[ y \\]", "$\\alpha$", "$x_i$", "\\begin{align}", "\\R^n"],
)
def test_find_raw_math_flags_latex(text):
    assert len(site_pages.find_raw_math([text])) == 1


@pytest.mark.parametrize("text", ["costs $5 and $10", "plain text", "x = 3 (see (2))", "a - b"])
def test_find_raw_math_passes_prose(text):
    assert site_pages.find_raw_math([text]) == []


# --- the browser on tiny sites -----------------------------------------------


def _browser_or_skip():
    if importlib.util.find_spec("playwright") is None:
        pytest.skip(
            "playwright is not installed (.venv/bin/pip install -c ci/constraints.txt playwright)"
        )
    browser_check = pytest.importorskip("browser_check")
    if not Path(browser_check.CHROMIUM).is_file():
        pytest.skip(f"{browser_check.CHROMIUM} is missing (apt-get install -y chromium)")
    return browser_check


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "markdown",
            "source": [
                "Let $x$ be.\n",
                ":::{prf:theorem} T\n",
                ":::\n",
                ":::{exercise}\n",
                ":::\n",
                ":::{solution}\n",
                ":::\n",
            ],
        }
    ]
}
FAKE_MATHJAX = "<script>window.MathJax = {startup: {promise: Promise.resolve()}};</script>"


def _site(tmp_path: Path, body: str, head: str = FAKE_MATHJAX) -> Path:
    site = tmp_path / "site"
    (site / "book").mkdir(parents=True)
    (site / "_sources" / "book").mkdir(parents=True)
    (site / "_static").mkdir()
    (site / "_static" / "ok.png").write_bytes(PNG_1x1)
    (site / "index.html").write_text('<meta http-equiv="refresh" content="0; url=book/nb.html">')
    (site / "_sources" / "book" / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    html = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
    (site / "book" / "nb.html").write_text(html)
    return site


GOOD_BODY = f"""
<p>Let <span class="math"><mjx-container>x</mjx-container></span> be.</p>
<img src="../_static/ok.png"><img src="https://example.com/external.png">
<a href="{COLAB}">Colab</a><a href="{BINDER}">Binder</a>
<div class="proof theorem admonition"><p class="admonition-title">Theorem 1</p></div>
<div class="exercise admonition"><p class="admonition-title">Exercise 1</p></div>
<details class="solution dropdown admonition"><summary>Solution to Exercise 1</summary></details>
<pre>code may hold $$ and \\( freely</pre>
"""
BAD_BODY = """
<p>Raw $$x^2$$ and \\(y\\) left.</p>
<img src="../_static/missing.png">
<a href="https://colab.research.google.com/github/org/book/blob/dev/book/nb.ipynb">Colab</a>
<details class="solution dropdown admonition"><summary>Solution to Exercise 1</summary></details>
<pre>### BEGIN SOLUTION
x = 1
### END SOLUTION</pre>
"""


def _check(browser_check, site: Path, student: bool = False) -> list[str]:
    pages = [site_pages.Page("book/nb", "book/nb", True)]
    shots = site.parent / "shots"
    results, _ = browser_check.check_site(
        site, pages, CONFIG, site, shots, student=student, timeout_s=20
    )
    assert (shots / "book__nb.png").stat().st_size > 0
    return results[0].failures


def test_tiny_good_site_passes(tmp_path):
    browser_check = _browser_or_skip()
    assert _check(browser_check, _site(tmp_path, GOOD_BODY)) == []


def test_tiny_bad_site_lists_each_failure(tmp_path):
    browser_check = _browser_or_skip()
    failures = "\n".join(_check(browser_check, _site(tmp_path, BAD_BODY), student=True))
    assert "the source has math but the page has no MathJax output" in failures
    assert "raw LaTeX in the visible text: ...Raw $$x^2$$" in failures
    assert "image does not load: /_static/missing.png" in failures
    assert f"no colab launch link {COLAB}" in failures
    assert f"no binder launch link {BINDER}" in failures
    assert "1 sphinx-proof directive(s) in the source, 0 rendered" in failures
    assert "1 exercise directive(s) in the source, 0 rendered" in failures
    assert "student edition shows 1 solution element(s)" in failures
    assert "student edition page contains the text 'Solution to'" in failures
    assert "student edition page contains the text '### BEGIN SOLUTION'" in failures
    assert "student edition source has 1 solution directive(s)" in failures
    assert "student edition links to the full notebooks" in failures


def test_one_tab_keeps_each_pages_failures_to_that_page(tmp_path):
    # the check loads every page in one tab: a page's broken load and JavaScript error
    # must be reported on that page only, not on the next one
    browser_check = _browser_or_skip()
    site = _site(tmp_path, GOOD_BODY)
    bad = GOOD_BODY + '<img src="../_static/missing.png"><script>undefinedCall();</script>'
    (site / "book" / "bad.html").write_text(
        f"<!doctype html><html><head>{FAKE_MATHJAX}</head><body>{bad}</body></html>"
    )
    (site / "_sources" / "book" / "bad.ipynb").write_text(json.dumps(NOTEBOOK))
    pages = [site_pages.Page(name, name, False) for name in ("book/bad", "book/nb", "book/bad")]
    results, _ = browser_check.check_site(site, pages, CONFIG, site, None, timeout_s=20)
    first, good, again = (r.failures for r in results)
    assert good == [], good
    for failures in (first, again):
        text = "\n".join(failures)
        assert "image does not load: /_static/missing.png" in text
        assert "failed to load: 404 /_static/missing.png" in text
        assert "JavaScript error: undefinedCall is not defined" in text


def test_cdn_mathjax_fails_offline(tmp_path):
    browser_check = _browser_or_skip()
    cdn = '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
    body = GOOD_BODY.replace("<mjx-container>x</mjx-container>", "\\(x\\)")
    failures = _check(browser_check, _site(tmp_path, body, head=cdn))
    assert any("math not typeset: MathJax absent" in f for f in failures), failures


LOCAL_MATHJAX = ROOT / "_build" / "mathjax-static" / "mathjax"


def test_local_mathjax_typesets_offline_with_the_book_macros(tmp_path):
    browser_check = _browser_or_skip()
    if not (LOCAL_MATHJAX / "tex-chtml.js").is_file():
        pytest.skip("no local MathJax in _build/mathjax-static (make mathjax)")
    macros = {"R": "\\mathbb{R}", "E": "\\mathbb{E}", "KL": "\\mathrm{KL}"}
    head = (
        f"<script>window.MathJax = {json.dumps({'tex': {'macros': macros}})};</script>"
        '<script defer src="../_static/mathjax/tex-chtml.js"></script>'
    )
    body = GOOD_BODY.replace(
        "<mjx-container>x</mjx-container>", "\\(x \\in \\R^n, \\KL(q \\Vert p), \\E[x]\\)"
    )
    site = _site(tmp_path, body, head=head)
    shutil.copytree(LOCAL_MATHJAX, site / "_static" / "mathjax")
    assert _check(browser_check, site) == []
    broken = _site(tmp_path / "undefined", body.replace("\\KL", "\\NoSuchMacro"), head=head)
    shutil.copytree(LOCAL_MATHJAX, broken / "_static" / "mathjax")
    assert any("MathJax error" in f for f in _check(browser_check, broken))
