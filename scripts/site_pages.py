"""What each page of the built book should show, worked out without a browser.

Pure helpers for ``scripts/browser_check.py``: the pages of ``_toc.yml`` and
their sources, what a source contains (math, sphinx-proof and sphinx-exercise
directives), the Colab and Binder URLs its launch buttons must carry, and raw
LaTeX left in a page's visible text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")

# A directive opening line: ```{name} or :::{name}, possibly inside a blockquote.
_DIRECTIVE = re.compile(r"^[ \t>]*(?:`{3,}|~{3,}|:{3,})[ \t]*\{([A-Za-z][\w:-]*)\}", re.MULTILINE)
_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,}|:{3,})[ \t]*(\S*)")
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_SOURCE_MATH = re.compile(
    r"\$\$|\$[^$\s][^$\n]*\$|\{math\}|\\begin\{(?:equation|align|gather|multline|eqnarray)"
)
_CODE_DIRECTIVES = {"code-cell", "code-block", "code", "sourcecode", "literalinclude"}

# Raw LaTeX that MathJax should have replaced, in text outside code and MathJax output.
_RAW_MATH = re.compile(
    r"\$\$"
    r"|\\[()\[\]]"
    r"|\\(?:begin|end)\{"
    r"|\$[^$\n]{0,200}?(?:\\[A-Za-z]+|[_^{}])[^$\n]{0,200}?\$"
    r"|\\[A-Za-z]+"
)
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)


@dataclass(frozen=True)
class Page:
    """One page of the book.

    ``docname`` is the path without suffix (``book/pca/index``); ``chapter`` is
    the docname of the chapter (top-level ``_toc.yml`` entry) the page belongs to,
    and ``is_chapter_start`` marks that entry itself (and the root page).
    """

    docname: str
    chapter: str
    is_chapter_start: bool


@dataclass(frozen=True)
class SourceFeatures:
    """What a page's source asks the browser to show.

    Counts are of directives (``{prf:...}``, ``{exercise}``, ``{solution}``) outside
    code; ``has_math`` is true for ``$...$``, ``$$``, ``{math}`` and amsmath blocks.
    """

    has_math: bool
    n_proof: int
    n_exercise: int
    n_solution: int
    is_notebook: bool


def _strip_suffix(name: str) -> str:
    for suffix in SOURCE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _walk_entries(entries: Iterable[dict], chapter: str | None) -> Iterator[Page]:
    for entry in entries or []:
        if "glob" in entry:
            raise ValueError(
                f"_toc.yml entry {entry!r} uses glob, which the browser check cannot expand; "
                "list the files instead"
            )
        if "file" in entry:
            docname = _strip_suffix(str(entry["file"]))
            owner = chapter or docname
            yield Page(docname, owner, chapter is None)
        else:
            owner = chapter
        sections = entry.get("sections", [])
        for sub in entry.get("subtrees", []):
            sections = [*sections, *sub.get("entries", [])]
        if sections:
            yield from _walk_entries(sections, owner)


def discover_pages(toc: dict) -> list[Page]:
    """List the pages of a jb-book ``_toc.yml`` (already parsed) in reading order.

    The root and every chapter entry start a chapter; ``sections`` belong to it.
    ``url`` entries are skipped. Raises ``ValueError`` on a toc without ``root``.
    """
    if "root" not in toc:
        raise ValueError("_toc.yml has no 'root' entry; is it a jb-book table of contents?")
    root = _strip_suffix(str(toc["root"]))
    pages = [Page(root, root, True)]
    if "parts" in toc:
        for part in toc["parts"]:
            pages.extend(_walk_entries(part.get("chapters", []), None))
    else:
        pages.extend(_walk_entries(toc.get("chapters", []), None))
    return pages


def read_toc(path: Path) -> list[Page]:
    """Parse ``_toc.yml`` at ``path`` and return its pages (see ``discover_pages``)."""
    return discover_pages(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def find_source(docname: str, folders: Iterable[Path]) -> Path | None:
    """Return the first ``<folder>/<docname><suffix>`` that exists, else ``None``."""
    for folder in folders:
        for suffix in SOURCE_SUFFIXES:
            candidate = Path(folder) / f"{docname}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def strip_code(markdown: str) -> str:
    """Remove fenced code (not directive content) and inline code spans from MyST text.

    Directive fences (```` ```{name} ```` other than code directives, and ``:::``)
    are kept with their content; inline code is removed line by line.
    """
    kept: list[str] = []
    stack: list[tuple[str, bool]] = []  # (fence, is_code)
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if match:
            fence, info = match.groups()
            if stack and fence[0] == stack[-1][0][0] and len(fence) >= len(stack[-1][0]):
                if not info:  # closing fence
                    stack.pop()
                    continue
            if not (stack and stack[-1][1]):
                name = info[1:-1] if info.startswith("{") and info.endswith("}") else None
                is_code = fence[0] != ":" and (name is None or name in _CODE_DIRECTIVES)
                stack.append((fence, is_code))
                if not is_code:
                    kept.append(line)
                continue
        if not (stack and stack[-1][1]):
            kept.append(_INLINE_CODE.sub("", line))
    return "\n".join(kept)


def markdown_of(source: str, suffix: str) -> str:
    """Return the Markdown text of a source: markdown cells of a notebook, else the text."""
    if suffix != ".ipynb":
        return source
    notebook = json.loads(source)
    cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "markdown"]
    return "\n\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
    )


def source_features(source: str, suffix: str) -> SourceFeatures:
    """Describe a page source (its text and suffix, ``.ipynb`` or ``.md``)."""
    text = strip_code(markdown_of(source, suffix))
    names = _DIRECTIVE.findall(text)
    front = _FRONT_MATTER.match(source) if suffix == ".md" else None
    is_text_notebook = bool(front and re.search(r"^\s*kernelspec:", front.group(1), re.M))
    return SourceFeatures(
        has_math=bool(_SOURCE_MATH.search(text)),
        n_proof=sum(n.startswith("prf:") for n in names),
        n_exercise=sum(n in ("exercise", "exercise-start") for n in names),
        n_solution=sum(n in ("solution", "solution-start") for n in names),
        is_notebook=suffix == ".ipynb" or is_text_notebook,
    )


def launch_urls(config: dict, source_path: str) -> dict[str, str]:
    """Colab and Binder URLs the launch buttons of ``source_path`` must carry.

    ``config`` is the parsed ``_config.yml``; ``source_path`` is relative to the
    book root (``book/pca/pca_in_code.ipynb``). Returns ``{"colab": ..., "binder": ...}``
    for each service whose URL is configured (``{}`` when launch buttons are off).
    """
    buttons = config.get("launch_buttons") or {}
    if not (buttons.get("colab_url") or buttons.get("binderhub_url")):
        return {}
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    parsed = urlparse(url)
    parts = parsed.path.strip("/").removesuffix(".git").split("/")
    if parsed.netloc != "github.com" or len(parts) != 2:
        raise ValueError(
            f"repository.url {url!r} in _config.yml is not https://github.com/<org>/<repo>; "
            "launch buttons need a GitHub repository"
        )
    org, name = parts
    branch = repo.get("branch", "main")
    prefix = str(repo.get("path_to_book", "") or "").strip("/")
    path = f"{prefix}/{source_path}" if prefix else source_path
    interface = buttons.get("notebook_interface", "classic")
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}.get(interface)
    if ui is None:
        raise ValueError(
            f"launch_buttons.notebook_interface {interface!r}: use 'classic' or 'jupyterlab'"
        )
    urls = {}
    if buttons.get("colab_url"):
        colab = str(buttons["colab_url"]).rstrip("/")
        urls["colab"] = f"{colab}/github/{org}/{name}/blob/{branch}/{path}"
    if buttons.get("binderhub_url"):
        binder = str(buttons["binderhub_url"]).rstrip("/")
        urls["binder"] = f"{binder}/v2/gh/{org}/{name}/{branch}?urlpath={ui}/{path}"
    return urls


def find_raw_math(texts: Iterable[str], context: int = 25) -> list[str]:
    """Return one snippet per text block holding raw LaTeX (``$$``, ``\\(``, ``\\frac``...).

    ``texts`` are a page's visible text blocks with code and MathJax output removed;
    each snippet is the first match with ``context`` characters either side.
    """
    found = []
    for text in texts:
        match = _RAW_MATH.search(text)
        if match:
            start, end = max(0, match.start() - context), match.end() + context
            found.append(" ".join(text[start:end].split()))
    return found
