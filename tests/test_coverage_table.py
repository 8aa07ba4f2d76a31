"""The instructor guide's concept coverage table (book/instructors/coverage.md).

It must list exactly the concept ids of the lectures' concept list, in its order, link
only to pages of the book and to labels that exist, and state counts that match its rows.
The table is the only place for the ids: they belong to instructors, so no student page
(any page under book/ outside book/instructors/, notebooks' code included) shows one.
The concept list lives outside the repository (../shared/lectures/CONCEPTS.md); a copy of
its ids is committed as book/instructors/concepts_ids.txt so that a clean clone can run
these checks, and the copy is compared with the list whenever the list is present.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGE = BOOK / "instructors" / "coverage.md"
IDS_COPY = BOOK / "instructors" / "concepts_ids.txt"
CONCEPTS = ROOT.parent / "shared" / "lectures" / "CONCEPTS.md"
INDEX = BOOK / "instructors" / "index.md"
# The coverage page itself is a section of book/instructors/index in _toc.yml.
COVERAGE_DOC = "book/instructors/coverage"

ID = r"[A-Z]+-\d+"
ROW = re.compile(rf"^\| ({ID}) \|(.*)\|\s*$", re.M)
DOC_ROLE = re.compile(r"\{doc\}`(?:[^`<]*<([^`>]+)>|([^`<>]+))`")
REF_ROLE = re.compile(r"\{ref\}`(?:[^`<]*<([^`>]+)>|([^`<>]+))`")
PRF_ROLE = re.compile(r"\{prf:ref\}`(?:[^`<]*<([^`>]+)>|([^`<>]+))`")
TARGET = re.compile(r"^\(([^)\s]+)\)=\s*$")
LABEL = re.compile(r"^\s*:label:\s*(\S+)")
DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{([^}]+)\}")
STATUSES = ("covered", "partly", "not yet")


def concept_ids_from_list(text: str) -> list[str]:
    """Ids in the first column of the concept list's tables, in order."""
    return re.findall(rf"^\|\s*({ID})\s*\|", text, re.M)


BEYOND = "\n## Beyond the lectures\n"


def table_rows(*, beyond: bool = False) -> list[tuple[str, list[str]]]:
    """(id, [concept, taught, notebook, exercises, status]) for every row of the lectures'
    table, or with ``beyond=True`` of the table of topics beyond the lectures (their own ids)."""
    text = PAGE.read_text(encoding="utf-8")
    lectures, _, extra = text.partition(BEYOND)
    rows = []
    for match in ROW.finditer(extra if beyond else lectures):
        cells = [cell.strip() for cell in match.group(2).split("|")]
        rows.append((match.group(1), cells))
    return rows


def test_rows_beyond_the_lectures_have_their_own_ids():
    rows = table_rows(beyond=True)
    ids = [cid for cid, _ in rows]
    assert len(ids) == len(set(ids)), f"repeated ids beyond the lectures: {ids}"
    lecture_ids = set(IDS_COPY.read_text(encoding="utf-8").split())
    assert not lecture_ids & set(ids), "an id beyond the lectures is a lecture concept id"
    for cid, cells in rows:
        assert len(cells) == 5 and all(cells), f"{cid}: expected 6 filled cells"
        assert cells[-1] in STATUSES and "{doc}`" in cells[1], f"{cid}: status or page missing"


def toc_files() -> set[str]:
    """Every document named in _toc.yml (root and all nested files), plus the coverage page."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = {toc["root"]}

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    files.add(COVERAGE_DOC)
    return {posixpath.normpath(f.removesuffix(".md").removesuffix(".ipynb")) for f in files}


def markdown_texts(path: Path) -> list[str]:
    """A page's markdown: the whole .md file, or the markdown cells of a notebook."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return [text]
    cells = json.loads(text)["cells"]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "markdown"
    ]


def book_labels() -> dict[str, tuple[str, str]]:
    """label -> (document without suffix, kind): 'target', or the directive's name."""
    labels = {}
    for path in sorted([*BOOK.rglob("*.md"), *BOOK.rglob("*.ipynb")]):
        if ".ipynb_checkpoints" in path.parts:
            continue
        doc = path.relative_to(ROOT).with_suffix("").as_posix()
        for text in markdown_texts(path):
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if m := TARGET.match(line):
                    labels[m.group(1)] = (doc, "target")
                elif m := LABEL.match(line):
                    kind = "?"
                    for previous in reversed(lines[:i]):
                        if d := DIRECTIVE.match(previous):
                            kind = d.group(1).strip()
                            break
                    labels[m.group(1)] = (doc, kind)
    return labels


def roles(pattern: re.Pattern, text: str) -> list[str]:
    return [explicit or plain for explicit, plain in pattern.findall(text)]


def test_page_exists_with_its_title():
    assert PAGE.exists(), "book/instructors/coverage.md is missing"
    assert PAGE.read_text(encoding="utf-8").startswith("# Concept coverage\n")


def test_instructor_guide_links_to_the_page():
    assert "{doc}`coverage`" in INDEX.read_text(encoding="utf-8")


def test_id_copy_matches_the_concept_list():
    if not CONCEPTS.exists():
        pytest.skip(f"{CONCEPTS} is absent (a clean clone has no ../shared); the copy is used")
    expected = concept_ids_from_list(CONCEPTS.read_text(encoding="utf-8"))
    copy = IDS_COPY.read_text(encoding="utf-8").split()
    assert copy == expected, (
        "book/instructors/concepts_ids.txt is out of date: regenerate it from CONCEPTS.md "
        "(one id per line) and update the coverage table"
    )


def test_table_lists_every_concept_once_in_order():
    expected = IDS_COPY.read_text(encoding="utf-8").split()
    assert len(expected) == len(set(expected)) > 100
    ids = [cid for cid, _ in table_rows()]
    missing = [cid for cid in expected if cid not in ids]
    extra = [cid for cid in ids if cid not in expected]
    assert not missing and not extra, f"missing rows {missing}, unknown ids {extra}"
    assert ids == expected, "rows are not in the order of the concept list"


def test_every_row_has_six_filled_cells():
    for cid, cells in table_rows():
        assert len(cells) == 5, f"{cid}: expected 6 cells, got {len(cells) + 1} (a stray '|'?)"
        assert all(cells), f"{cid}: empty cell; write '—' or 'not yet'"


def test_status_agrees_with_the_cells():
    for cid, cells in table_rows():
        taught, notebook, status = cells[1], cells[2], cells[-1]
        assert status in STATUSES, f"{cid}: unknown status {status!r}"
        if status == "not yet":
            assert taught.startswith("not yet"), f"{cid}: 'not yet' but a page is named"
            assert "{doc}`" not in notebook, f"{cid}: 'not yet' but a notebook is named"
        else:
            assert "{doc}`" in taught, f"{cid}: {status} needs a page in the 'taught' cell"
        if status == "covered":
            assert "{doc}`" in notebook, f"{cid}: covered needs a notebook"
        if notebook == "—":
            assert status != "covered", f"{cid}: no notebook, so at most 'partly'"


def test_summary_counts_match_the_rows():
    text = PAGE.read_text(encoding="utf-8")
    m = re.search(
        r"of the (\d+) concepts, (\d+) are covered,\s+(\d+) are partly covered and (\d+) "
        r"are not yet covered",
        text,
    )
    assert m, "summary sentence not found"
    statuses = [cells[-1] for _, cells in table_rows()]
    counted = [len(statuses)] + [statuses.count(s) for s in STATUSES]
    assert [int(g) for g in m.groups()] == counted


def test_doc_links_point_to_pages_in_the_toc():
    text = PAGE.read_text(encoding="utf-8")
    toc = toc_files()
    targets = roles(DOC_ROLE, text)
    assert len(targets) > 100
    base = PAGE.parent.relative_to(ROOT).as_posix()
    for target in set(targets):
        doc = posixpath.normpath(posixpath.join(base, target))
        assert any((ROOT / f"{doc}{suffix}").exists() for suffix in (".md", ".ipynb")), (
            f"{{doc}}`{target}`: no file {doc}.md or {doc}.ipynb"
        )
        assert doc in toc, f"{{doc}}`{target}`: {doc} is not in _toc.yml"


def test_ref_labels_exist_in_the_book():
    text = PAGE.read_text(encoding="utf-8")
    labels = book_labels()
    toc = toc_files()
    refs, prf_refs = roles(REF_ROLE, text), roles(PRF_ROLE, text)
    assert refs and prf_refs
    for label in set(refs):
        assert label in labels, f"{{ref}}`{label}`: no such label in the book"
        doc, kind = labels[label]
        assert not kind.startswith("prf:"), f"{{ref}}`{label}` is a {kind}: use {{prf:ref}}"
        assert doc in toc, f"{{ref}}`{label}` is defined in {doc}, which is not in _toc.yml"
    for label in set(prf_refs):
        assert label in labels, f"{{prf:ref}}`{label}`: no such label in the book"
        doc, kind = labels[label]
        assert kind.startswith("prf:"), f"{{prf:ref}}`{label}` is a {kind}, not a prf directive"
        assert doc in toc, f"{{prf:ref}}`{label}` is defined in {doc}, not in _toc.yml"


def concept_ids() -> set[str]:
    return set(IDS_COPY.read_text(encoding="utf-8").split())


def student_pages() -> list[Path]:
    """Every page a student reads: .md and .ipynb under book/, except book/instructors/."""
    return sorted(
        path
        for path in [*BOOK.rglob("*.md"), *BOOK.rglob("*.ipynb")]
        if ".ipynb_checkpoints" not in path.parts
        and "_build" not in path.parts
        and not path.is_relative_to(BOOK / "instructors")
    )


def page_texts(path: Path) -> list[str]:
    """A page's whole source: the .md file, or every cell of a notebook (code too)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return [text]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in json.loads(text)["cells"]
    ]


def ids_in(text: str, ids: set[str]) -> list[str]:
    """Concept ids mentioned in ``text``: a prefix of the list, a dash and a number that is
    one of the ids (so "PCA-30" for 30 components or "SHA-256" are not ids)."""
    prefixes = sorted({cid.split("-")[0] for cid in ids})
    pattern = re.compile(rf"(?<![\w-])(?:{'|'.join(prefixes)})-\d+(?![\w-])")
    return [hit for hit in pattern.findall(text) if hit in ids]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("The manifold hypothesis (MAN-05) says", ["MAN-05"]),
        (
            "- **Basics**: AE-01 encoder and decoder; AE-06 the\n  information view",
            ["AE-01", "AE-06"],
        ),
        ("`GAN` owns the update (GAN-08 in the lectures)", ["GAN-08"]),
        ("| PCA-03 | the PCA theorem |", ["PCA-03"]),
        ('print(f"deep AE {e:.2f} <= PCA-30 {p:.2f}")', []),
        ("PCA-50 features, SHA-256 of every file, CC-BY-4.0, PCA-2", []),
    ],
)
def test_id_finder(text, found):
    assert ids_in(text, concept_ids()) == found


def test_student_pages_show_no_concept_id():
    pages = student_pages()
    assert any(p.name == "index.md" and p.parent.name == "pca" for p in pages)
    assert not any(p.is_relative_to(BOOK / "instructors") for p in pages)
    ids = concept_ids()
    found = {
        str(path.relative_to(ROOT)): sorted(
            {cid for text in page_texts(path) for cid in ids_in(text, ids)}
        )
        for path in pages
    }
    found = {page: hits for page, hits in found.items() if hits}
    assert not found, (
        f"concept ids on student pages: {found}; the ids belong to the instructors' coverage "
        "table (book/instructors/coverage.md) only: name the concept in words instead"
    )
