"""The student edition (scripts/student_edition.py, ``make student``) holds no solution.

What counts as solution text is found here independently of the script: the lines
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` in code cells, and the body
of every ``{solution}`` directive (with its label) in notebooks and .md pages. Lines
that also occur (even inside a longer line) outside solutions in the full edition
are left out, since the student edition rightly keeps them.

* The stripping of the whole book's source runs always (a few seconds).
* An HTML build of a small book (one real chapter's exercises and theory page,
  and a fixture page) runs always (well under a minute).
* The full student HTML build is checked when STUDENT_EDITION_DIR names it:
  ``make student`` builds it and then runs this file that way.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
student_edition = load_script("student_edition")

SOLUTION_OPEN = re.compile(r"^(`{3,}|:{3,})\{solution\}")
MIN_LINE = 16  # shorter lines ("return x", ")") say nothing about a leak
WORD = re.compile(r"[A-Za-z_][A-Za-z_]{7,}")


def _texts(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of a page: the cells of a notebook, or one markdown text."""
    if path.suffix == ".md":
        return [("markdown", path.read_text(encoding="utf-8"))]
    nb = nbformat.read(path, as_version=4)
    return [(cell.cell_type, cell.source) for cell in nb.cells]


def split_solutions(kind: str, text: str) -> tuple[list[str], list[str], list[str]]:
    """(solution lines, other lines, solution labels) of one cell or page."""
    solution, other, labels = [], [], []
    lines = text.split("\n")
    fence = None
    in_region = False
    for line in lines:
        if kind == "code":
            if "### BEGIN SOLUTION" in line:
                in_region = True
            elif "### END SOLUTION" in line:
                in_region = False
            else:
                (solution if in_region else other).append(line.strip())
            continue
        if fence is None:
            match = SOLUTION_OPEN.match(line)
            if match:
                fence = match.group(1)
            else:
                other.append(line.strip())
        elif line.rstrip() == fence:
            fence = None
        else:
            if line.startswith(":label:"):
                labels.append(line.split()[1])
            solution.append(line.strip())
    return solution, other, labels


def solution_text(root: Path) -> tuple[set[str], set[str], set[str]]:
    """Distinctive solution lines, word stems and labels of the book under ``root``."""
    solution, other, labels = set(), [], set()
    for path in sorted((root / "book").rglob("*")):
        if path.suffix not in (".ipynb", ".md") or ".ipynb_checkpoints" in path.parts:
            continue
        for kind, text in _texts(path):
            s, o, lab = split_solutions(kind, text)
            solution.update(line for line in s if len(line) >= MIN_LINE)
            other += o
            labels.update(lab)
    # The pages also show the package's own source (literalinclude), solutions or not.
    other += [p.read_text(encoding="utf-8") for p in sorted((root / "companion").rglob("*.py"))]
    other_text = "\n".join(other)
    lines = {line for line in solution if line not in other_text}
    other_stems = {stem(w) for w in set(re.findall(r"[A-Za-z_]+", other_text))}
    stems = {stem(w) for w in set(WORD.findall("\n".join(solution)))} - other_stems
    return lines, stems, labels


def stem(word: str) -> str:
    """A word as Sphinx's English search index stores it."""
    from sphinx.search.en import SearchEnglish

    return SearchEnglish({}).stem(word.lower())


def leaks(folder: Path, lines: set[str], words: set[str], labels: set[str]) -> list[str]:
    """Every solution line, word or label found in any text file under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".ipynb", ".md", ".txt", ".js"):
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            raw = "\n".join(text for _, text in _texts(path))
        text = html.unescape(re.sub(r"<[^>]+>", "", raw)) if path.suffix == ".html" else raw
        where = path.relative_to(folder)
        found += [f"{where}: line {line!r}" for line in lines if line in text]
        found += [f"{where}: label {label!r}" for label in labels if label in raw]
        if path.name == "searchindex.js":
            found += [f"{where}: word {w!r}" for w in words if index_has(raw, w)]
    return found


def index_has(searchindex: str, stemmed: str) -> bool:
    """Whether the Sphinx search index lists the stemmed word among its terms or titles."""
    index = json.loads(searchindex[searchindex.index("(") + 1 : searchindex.rindex(")")])
    return stemmed in index["terms"] or stemmed in index["titleterms"]


def test_the_book_has_solutions_to_hide():
    lines, words, labels = solution_text(ROOT)
    assert len(lines) > 100 and len(labels) > 30 and len(words) > 10


def test_stripped_source_has_no_solutions_and_the_book_keeps_them(tmp_path):
    before = {p: p.read_bytes() for p in (ROOT / "book").rglob("*.ipynb")}
    lines, words, labels = solution_text(ROOT)
    student_edition.write_source(ROOT, tmp_path / "source")
    assert leaks(tmp_path / "source" / "book", lines, words, labels) == []
    # the full edition is left as it was, solutions included
    assert {p: p.read_bytes() for p in (ROOT / "book").rglob("*.ipynb")} == before
    assert solution_text(ROOT)[0] == lines
    # students get a stub for every solution region, and an answer cell
    nb = nbformat.read(tmp_path / "source/book/pca/exercises.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count("raise NotImplementedError()") >= 4
    assert "def my_pca_codes(X, k):" in code and "check_pca_projection(my_pca_codes)" in code
    assert all(not c.get("outputs") for c in nb.cells)
    assert "YOUR ANSWER HERE" in [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert "(student edition)" in (tmp_path / "source/_config.yml").read_text()


def test_stripping_rules():
    code = (
        "import torch\n\n\ndef f(x):\n    '''Doc.'''\n"
        "    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    )
    assert student_edition.strip_code(code) == (
        "import torch\n\n\ndef f(x):\n    '''Doc.'''\n"
        "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    )
    page = "Intro.\n\n````{solution} ex-1\n:label: sol-1\n\n```python\nx = 1\n```\n````\n\nAfter."
    assert student_edition.strip_solution_directives(page) == "Intro.\n\nAfter."
    colon = "A\n\n:::{solution} ex-2\nproof\n:::\nB"
    assert student_edition.strip_solution_directives(colon) == "A\n\nB"
    with pytest.raises(ValueError, match="never closed"):
        student_edition.strip_solution_directives("```{solution} ex\nno end")
    with pytest.raises(ValueError, match="never closed"):
        student_edition.strip_code("### BEGIN SOLUTION\nx = 1\n")
    glued = "The flow scores {glue:text}`best_bpd:.3f` bits/dim ({glue:text}`best_name`)."
    assert student_edition.unglue(glued) == (
        "The flow scores *(`best_bpd` in your run)* bits/dim (*(`best_name` in your run)*)."
    )


def test_stripped_source_has_no_glue_roles(tmp_path):
    """The student edition is not executed: a glue role left in it has no value (-W fails)."""
    written = student_edition.write_source(ROOT, tmp_path / "source")
    left = [p for p in written for _, text in _texts(p) if "{glue" in text]
    assert not left, left


FIXTURE_PAGE = """# Fixture page

```{exercise} A fixture exercise
:label: fixture-ex

Prove it.
```

:::{solution} fixture-ex
:label: fixture-sol
The fixture solution mentions a xylophonically distinctive word.
:::
"""


@pytest.mark.skipif(
    shutil.which("jupyter-book") is None
    and not Path(sys.executable).with_name("jupyter-book").exists(),
    reason="jupyter-book is not installed (pip install -e '.[book]')",
)
def test_html_of_a_small_book_has_no_solutions(tmp_path):
    """One real chapter's exercises and one fixture page, built to HTML, strictly."""
    book = tmp_path / "book_root"
    (book / "book" / "pca").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy2(ROOT / "book" / "references.bib", book / "book" / "references.bib")
    if (ROOT / "book" / "_ext").exists():
        shutil.copytree(ROOT / "book" / "_ext", book / "book" / "_ext")
    shutil.copy2(ROOT / "book/pca/exercises.ipynb", book / "book/pca/exercises.ipynb")
    (book / "book" / "fixture.md").write_text(FIXTURE_PAGE, encoding="utf-8")
    (book / "book" / "references.md").write_text(
        "# References\n\n```{bibliography}\n:filter: docname in docnames\n```\n", encoding="utf-8"
    )
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/fixture\nchapters:\n"
        "  - file: book/pca/exercises\n  - file: book/references\n",
        encoding="utf-8",
    )
    shutil.copytree(ROOT / "companion", book / "companion")
    lines, words, labels = solution_text(book)
    assert "fixture-sol" in labels and stem("xylophonically") in words

    student_edition.write_source(book, tmp_path / "student" / "source")
    source = tmp_path / "student" / "source"
    # Not strict: the real chapter's cross references point to pages this book leaves out.
    student_edition.build_html(source, tmp_path / "student" / "html", strict=False)
    html_dir = tmp_path / "student" / "html"
    assert (html_dir / "book" / "pca" / "exercises.html").exists()
    assert (html_dir / "_sources" / "book" / "pca" / "exercises.ipynb").exists()
    assert (html_dir / "searchindex.js").exists()
    assert index_has((html_dir / "searchindex.js").read_text(), stem("whitening"))  # a real index
    assert leaks(html_dir, lines, words, labels) == []


@pytest.mark.skipif(
    "STUDENT_EDITION_DIR" not in os.environ,
    reason="set STUDENT_EDITION_DIR to a built student edition (make student does)",
)
def test_built_student_edition_has_no_solutions():
    built = Path(os.environ["STUDENT_EDITION_DIR"])
    assert (built / "html" / "index.html").exists() or any((built / "html").glob("*.html"))
    assert (built / "html" / "searchindex.js").exists()
    lines, words, labels = solution_text(ROOT)
    assert leaks(built, lines, words, labels) == []
