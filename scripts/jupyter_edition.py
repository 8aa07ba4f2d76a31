"""The Jupyter edition: the book's notebooks as Colab, Binder's JupyterLab and nbgrader show them.

The book's notebooks are written in MyST Markdown for Jupyter Book: roles
(``{doc}``, ``{ref}``, ``{prf:ref}``, ``{cite:p}``), directives
(``{exercise}``, ``{solution}``, ``{prf:...}``, ``{note}``, ``{literalinclude}``),
``(label)=`` targets and the LaTeX macros that only ``_config.yml`` defines. Outside
the book those show as raw text or as math errors. This script rewrites every
notebook's Markdown into plain Markdown:

- references become links to the published page (``html.baseurl`` in _config.yml),
  citations "(Author, year)" from ``book/references.bib``;
- exercises, proofs and notes become bold-titled paragraphs, solutions a
  ``<details>`` block (closed, like the book's dropdown);
- ``literalinclude`` becomes a code block with the included source, read from the
  package exactly as Sphinx would (``:pyobject:``, ``:start-at:``, ``:end-at:``);
- the macros are expanded.

Code cells are unchanged. The edition is a folder with the repository's layout
(``book/<chapter>/<name>.ipynb``, ``environment.yml``, a README), published as the
branch ``jupyter-edition`` that the launch buttons open (``repository.branch`` in
_config.yml):

    python scripts/jupyter_edition.py                    # writes _build/jupyter-edition
    python scripts/jupyter_edition.py --check            # also fails on leftover MyST syntax
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "jupyter-edition"

ROLE = re.compile(r"\{([a-zA-Z][\w:-]*)\}`([^`]*)`")
GLUE = re.compile(r"\{glue:text\}`([^`]*)`")
OPEN_FENCE = re.compile(
    r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$"
)
OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\((?P<label>[\w.:-]+)\)=\s*$")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)

PRF_KINDS = {
    "theorem": "Theorem",
    "proposition": "Proposition",
    "lemma": "Lemma",
    "corollary": "Corollary",
    "definition": "Definition",
    "example": "Example",
    "remark": "Remark",
    "algorithm": "Algorithm",
    "conjecture": "Conjecture",
    "observation": "Observation",
    "property": "Property",
    "axiom": "Axiom",
    "criterion": "Criterion",
    "assumption": "Assumption",
}
ADMONITIONS = {"note", "tip", "warning", "important", "caution", "attention", "hint", "seealso"}


# ---------------------------------------------------------------- the book's facts


@dataclass(frozen=True)
class Target:
    docname: str  # e.g. "book/gans/index"
    kind: str  # "section", "exercise", "solution", "Theorem", ...
    title: str


def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def site_url(config: dict) -> str:
    """The published book's address, ending with a slash (``html.baseurl``)."""
    url = config.get("html", {}).get("baseurl")
    if not url:
        raise ValueError("_config.yml sets no html.baseurl; the edition's links need it")
    return url.rstrip("/") + "/"


def macros(config: dict) -> dict[str, str]:
    """The LaTeX macros of _config.yml (``sphinx.config.mathjax3_config.tex.macros``)."""
    tex = config["sphinx"]["config"]["mathjax3_config"]["tex"]
    return dict(tex.get("macros", {}))


def book_sources(root: Path = ROOT) -> list[Path]:
    """Every page source of the book (.md and .ipynb)."""
    book = root / "book"
    return sorted(
        p
        for p in [*book.rglob("*.md"), *book.rglob("*.ipynb")]
        if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts
    )


def notebooks(root: Path = ROOT) -> list[Path]:
    return [p for p in book_sources(root) if p.suffix == ".ipynb"]


def page_markdown(path: Path) -> list[str]:
    """The Markdown of a page: the file, or a notebook's Markdown cells."""
    if path.suffix == ".md":
        return [path.read_text()]
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def collect_targets(root: Path = ROOT) -> dict[str, Target]:
    """Every label of the book: ``(label)=`` before a heading, and ``:label:`` of directives."""
    targets: dict[str, Target] = {}
    for path in book_sources(root):
        docname = path.relative_to(root).with_suffix("").as_posix()
        page_title = None
        for text in page_markdown(path):
            lines = text.splitlines()
            for i, line in enumerate(lines):
                heading = HEADING.match(line)
                if heading and page_title is None:
                    page_title = heading["title"]
                target = TARGET.match(line)
                if target:
                    following = next((m for m in map(HEADING.match, lines[i + 1 :]) if m), None)
                    title = following["title"] if following else target["label"]
                    targets[target["label"]] = Target(docname, "section", title)
                fence = OPEN_FENCE.match(line)
                if fence:
                    for option in lines[i + 1 :]:
                        match = OPTION.match(option)
                        if not match:
                            break
                        if match["key"] == "label":
                            kind = directive_kind(fence["name"])
                            targets[match["value"].strip()] = Target(
                                docname, kind, fence["arg"].strip()
                            )
        targets.setdefault(docname, Target(docname, "page", page_title or docname))
    return targets


def directive_kind(name: str) -> str:
    if name.startswith("prf:"):
        return PRF_KINDS.get(name[4:], name[4:].capitalize())
    return name


def load_bibliography(path: Path) -> dict[str, tuple[str, str]]:
    """``key -> (authors, year)`` for every entry of a BibTeX file ("Kingma and Welling")."""
    entries = {}
    for match in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", path.read_text(), re.S):
        key, body = match.group(1), match.group(2)
        fields = {
            name.lower(): value
            for name, value in re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", body)
        }
        authors = [a.strip() for a in re.split(r"\s+and\s+", fields.get("author", "?")) if a]
        surnames = [(a.split(",")[0] if "," in a else a.split()[-1]) for a in authors]
        surnames = [s.replace("{", "").replace("}", "") for s in surnames]
        if len(surnames) == 1:
            who = surnames[0]
        elif len(surnames) == 2:
            who = f"{surnames[0]} and {surnames[1]}"
        else:
            who = f"{surnames[0]} et al."
        entries[key] = (who, fields.get("year", "n.d."))
    return entries


# ---------------------------------------------------------------- the rewriting


@dataclass
class Edition:
    root: Path
    site: str
    targets: dict[str, Target]
    bibliography: dict[str, tuple[str, str]]
    macros: dict[str, str]

    @classmethod
    def of_book(cls, root: Path = ROOT) -> Edition:
        config = load_config(root)
        return cls(
            root=root,
            site=site_url(config),
            targets=collect_targets(root),
            bibliography=load_bibliography(root / "book" / "references.bib"),
            macros=macros(config),
        )

    # -- roles
    def page_url(self, docname: str, anchor: str | None = None) -> str:
        url = self.site + docname + ".html"
        return url + (f"#{anchor}" if anchor else "")

    def resolve_doc(self, target: str, docname: str) -> str:
        """A ``{doc}`` target (relative to the page, or absolute from the root) as a docname."""
        target = target.removesuffix(".md").removesuffix(".ipynb")
        if target.startswith("/"):
            return target.lstrip("/")
        return (Path(docname).parent / target).as_posix().replace("/./", "/")

    def role(self, name: str, content: str, docname: str) -> str:
        explicit = EXPLICIT.match(content)
        text, target = (explicit["text"], explicit["target"]) if explicit else (None, content)
        if name == "doc":
            resolved = self.normalise(self.resolve_doc(target, docname))
            title = text or self.targets.get(resolved, Target(resolved, "page", resolved)).title
            return f"[{title}]({self.page_url(resolved)})"
        if name in {"ref", "prf:ref", "numref", "eq"}:
            found = self.targets.get(target)
            if found is None:
                raise KeyError(f"{docname}: no label {target!r} in the book for {{{name}}}")
            if text is None:
                text = found.title if found.kind in {"section", "page"} else found.kind.capitalize()
                if found.kind not in {"section", "page"} and found.title:
                    text = f"{text} ({found.title})"
            return f"[{text}]({self.page_url(found.docname, html_id(target))})"
        if name in {"cite:p", "cite:t", "cite", "cite:ps", "cite:ts"}:
            keys = [k.strip() for k in target.split(",") if k.strip()]
            missing = [k for k in keys if k not in self.bibliography]
            if missing:
                raise KeyError(f"{docname}: no entry {missing} in book/references.bib")
            cited = [self.bibliography[k] for k in keys]
            if name.startswith("cite:t"):
                return "; ".join(f"{who} ({year})" for who, year in cited)
            return "(" + "; ".join(f"{who}, {year}" for who, year in cited) + ")"
        if name == "glue:text":
            # the reader's own number: named here, printed by the cell show_glued_cell adds
            return f"`{content.partition(':')[0]}`"
        if name in {"math"}:
            return f"${content}$"
        if name in {"code", "literal", "samp", "file", "kbd"}:
            return f"`{content}`"
        if name in {"term", "abbr", "sub", "sup", "emphasis"}:
            return text or content
        raise ValueError(f"{docname}: role {{{name}}} has no plain-Markdown rendering yet")

    def normalise(self, docname: str) -> str:
        parts: list[str] = []
        for part in docname.split("/"):
            if part == "..":
                parts.pop()
            elif part not in {"", "."}:
                parts.append(part)
        return "/".join(parts)

    def roles(self, text: str, docname: str) -> str:
        return ROLE.sub(lambda m: self.role(m[1], m[2], docname), text)

    # -- macros
    def expand_macros(self, text: str) -> str:
        for name, body in self.macros.items():
            if isinstance(body, list):  # [definition, number of arguments]
                raise ValueError(f"macro \\{name} takes arguments; expand it by hand")
            text = re.sub(rf"\\{name}(?![A-Za-z])", lambda _m, b=body: b, text)
        return text

    # -- directives
    def directive(
        self, name: str, arg: str, options: dict[str, str], body: str, docname: str
    ) -> str:
        body = self.markdown(body, docname).strip("\n")
        if name == "exercise":
            head = f"**Exercise ({arg}).**" if arg else "**Exercise.**"
            return f"{anchor(options)}{head} {body}"
        if name == "solution":
            target = self.targets.get(arg.strip())
            about = f" to exercise ({target.title})" if target and target.title else ""
            return (
                f"{anchor(options)}<details>\n<summary>Solution{about}</summary>\n\n"
                f"{body}\n\n</details>"
            )
        if name == "prf:proof":
            return f"*Proof.* {body} $\\blacksquare$"
        if name.startswith("prf:"):
            kind = directive_kind(name)
            head = f"**{kind} ({arg}).**" if arg else f"**{kind}.**"
            return f"{anchor(options)}{head} {body}"
        if name in ADMONITIONS:
            title = arg or name.capitalize()
            quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
            return f"> **{title}.**\n>\n{quoted}"
        if name == "admonition":
            quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
            return f"> **{arg}.**\n>\n{quoted}"
        if name in {"math", "equation"}:
            return f"$$\n{body}\n$$"
        if name in {"code-block", "code", "sourcecode"}:
            return f"```{arg}\n{body}\n```"
        if name == "literalinclude":
            return self.literalinclude(arg, options, docname)
        raise ValueError(f"{docname}: directive {{{name}}} has no plain-Markdown rendering yet")

    def literalinclude(self, arg: str, options: dict[str, str], docname: str) -> str:
        path = (self.root / Path(docname).parent / arg.strip()).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{docname}: literalinclude of {arg!r}: no file {path}")
        source = path.read_text()
        if "pyobject" in options:
            source = python_object_source(source, options["pyobject"].strip(), path)
        lines = source.splitlines()
        if "start-at" in options:
            start = next(i for i, line in enumerate(lines) if options["start-at"] in line)
            lines = lines[start:]
        if "end-at" in options:
            end = next(i for i, line in enumerate(lines) if options["end-at"] in line)
            lines = lines[: end + 1]
        language = options.get("language", "python").strip()
        where = path.relative_to(self.root).as_posix()
        code = "\n".join(lines)
        return f"From `{where}`:\n\n```{language}\n{code}\n```"

    def markdown(self, text: str, docname: str) -> str:
        """Plain Markdown for one Markdown cell of the page ``docname``."""
        lines = text.splitlines()
        out: list[str] = []
        prose: list[str] = []  # ordinary lines; roles may span several, so rewritten together

        def flush() -> None:
            if prose:
                out.extend(self.expand_macros(self.roles("\n".join(prose), docname)).split("\n"))
                prose.clear()

        i = 0
        in_code = None  # the fence of an ordinary code block we are inside
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if in_code is not None:
                out.append(line)
                if stripped.startswith(in_code) and stripped.strip(in_code[0]) == "":
                    in_code = None
                i += 1
                continue
            fence = OPEN_FENCE.match(line)
            if fence:
                flush()
                closing = fence["fence"]
                options: dict[str, str] = {}
                i += 1
                while i < len(lines) and OPTION.match(lines[i]):
                    option = OPTION.match(lines[i])
                    options[option["key"]] = unquote(option["value"])
                    i += 1
                body: list[str] = []
                depth = 0
                while i < len(lines):
                    current = lines[i].strip()
                    inner = OPEN_FENCE.match(lines[i])
                    if inner and inner["fence"] == closing:
                        depth += 1
                    elif current == closing:
                        if depth == 0:
                            break
                        depth -= 1
                    body.append(lines[i])
                    i += 1
                i += 1  # the closing fence
                rendered = self.directive(
                    fence["name"], fence["arg"].strip(), options, "\n".join(body), docname
                )
                out.extend(rendered.splitlines())
                continue
            code = re.match(r"^(`{3,}|~{3,})", stripped)
            if code:
                flush()
                in_code = code.group(1)
                out.append(line)
                i += 1
                continue
            target = TARGET.match(line)
            if target:
                flush()
                out.append(f'<a id="{html_id(target["label"])}"></a>')
                i += 1
                continue
            prose.append(line)
            i += 1
        flush()
        return "\n".join(out)

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        nb = nbformat.read(path, as_version=4)
        docname = path.relative_to(self.root).with_suffix("").as_posix()
        cells = []
        for cell in nb.cells:
            glued = GLUE.findall(cell.source) if cell.cell_type == "markdown" else []
            if cell.cell_type == "markdown":
                cell.source = self.markdown(cell.source, docname)
            cells.append(cell)
            if glued:
                cells.append(show_glued_cell(glued, cell))
        nb.cells = cells
        nb.metadata.setdefault("companion", {})["edition"] = "jupyter"
        return nb


def show_glued_cell(specs: list[str], after: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A code cell, collapsed in JupyterLab and shown as a form in Colab, that prints the
    values of your run which the Markdown cell above quotes by name."""
    unique = list(dict.fromkeys(specs))
    source = (
        "# @title The numbers of your run quoted above\n"
        "from companion.plot import show_glued\n\n"
        f"show_glued({', '.join(repr(s) for s in unique)})"
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"{after.get('id', 'cell')}-glued"[:64]
    cell.metadata.update({"jupyter": {"source_hidden": True}, "cellView": "form"})
    return cell


def unquote(value: str) -> str:
    """An option's value as MyST reads it (YAML): surrounding quotes removed."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def anchor(options: dict[str, str]) -> str:
    label = options.get("label", "").strip()
    return f'<a id="{html_id(label)}"></a>\n' if label else ""


def html_id(label: str) -> str:
    """The HTML id Sphinx gives a label (docutils' ``make_id``)."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def python_object_source(source: str, name: str, path: Path) -> str:
    """The source of ``name`` (``func``, ``Class`` or ``Class.method``) with its decorators."""
    tree = ast.parse(source)
    scope: list[ast.stmt] = tree.body
    node = None
    for part in name.split("."):
        node = next(
            (
                n
                for n in scope
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise KeyError(f"{path}: no object {name!r} for literalinclude :pyobject:")
        scope = node.body
    lines = source.splitlines()
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return "\n".join(lines[first - 1 : node.end_lineno])


# ---------------------------------------------------------------- checks


MYST_LEFTOVERS = {
    "a MyST role": re.compile(r"\{[a-zA-Z][\w:-]*\}`"),
    "a MyST directive": re.compile(r"^\s*(`{3,}|:{3,})\{", re.M),
    "a MyST target": re.compile(r"^\([\w.:-]+\)=\s*$", re.M),
    "a directive option": re.compile(r"^\s*:(label|class|pyobject|language|name):", re.M),
}


def leftovers(markdown: str, macro_names: list[str]) -> list[str]:
    """What in ``markdown`` only Jupyter Book understands: MyST syntax or a book-only macro."""
    found = [what for what, pattern in MYST_LEFTOVERS.items() if pattern.search(markdown)]
    found += [
        f"the macro \\{name} (defined only in _config.yml)"
        for name in macro_names
        if re.search(rf"\\{name}(?![A-Za-z])", markdown)
    ]
    return found


# ---------------------------------------------------------------- the edition folder


def environment_yml(root: Path = ROOT) -> str:
    """Binder's environment: the repository's environment.yml (companion from the tag)."""
    return (root / "environment.yml").read_text()


def readme(config: dict) -> str:
    url = config["repository"]["url"]
    return f"""# Jupyter edition of the course book's notebooks

This branch is generated by `scripts/jupyter_edition.py` from the `main` branch of
{url}; do not edit it by hand. The notebooks are the book's, with
Jupyter Book's MyST syntax rewritten into plain Markdown so that Colab, Binder's
JupyterLab and nbgrader show them as the book does. The published book is at
{site_url(config)}.

Open a notebook on Colab (its first cell installs the companion package), on Binder
(`environment.yml`), or locally after `pip install "companion @ git+{url}@<tag>"`.
"""


def build(out: Path, root: Path = ROOT) -> list[Path]:
    """Write the edition into ``out``; returns the notebooks written."""
    edition = Edition.of_book(root)
    if out.exists():
        shutil.rmtree(out)
    written = []
    for path in notebooks(root):
        target = out / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(edition.notebook(path), target)
        written.append(target)
    (out / "environment.yml").write_text(environment_yml(root))
    (out / "README.md").write_text(readme(load_config(root)))
    return written


def check(out: Path, root: Path = ROOT) -> list[str]:
    """Problems in the edition at ``out``: one line per notebook cell with leftovers."""
    names = list(macros(load_config(root)))
    problems = []
    for path in sorted(out.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                for what in leftovers(cell.source, names):
                    problems.append(f"{path.relative_to(out)} cell {index}: {what}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / BRANCH)
    parser.add_argument("--check", action="store_true", help="fail on leftover MyST syntax")
    args = parser.parse_args(argv)
    written = build(args.out)
    print(f"{len(written)} notebooks written to {args.out}")
    if args.check:
        problems = check(args.out)
        for line in problems:
            print(line)
        if problems:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
