"""Serve a local MathJax 3 copy when one has been fetched (``make mathjax``).

Sphinx loads MathJax from a CDN by default, so a book read offline shows raw
LaTeX. When ``_build/mathjax-static/mathjax/tex-chtml.js`` exists next to the book
or above it (or the folder named by the ``LOCAL_MATHJAX_STATIC`` environment
variable holds ``mathjax/tex-chtml.js``), this extension adds that static folder to
``html_static_path`` and points ``mathjax_path`` at the copy. Otherwise nothing
changes and the CDN is used, so a build without the copy raises no warning.
A ``mathjax_path`` set explicitly to something other than the MathJax 3 CDN is
left alone. ``mathjax3_config`` (the book's macros) applies either way.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

ENV_VAR = "LOCAL_MATHJAX_STATIC"
ENTRY = "mathjax/tex-chtml.js"
CDN_PREFIX = "https://cdn.jsdelivr.net/npm/mathjax@3"


def find_static_dir(srcdir: Path) -> Path | None:
    """Return the first static folder holding ``mathjax/tex-chtml.js``, else ``None``.

    Looks at ``$LOCAL_MATHJAX_STATIC``, then ``_build/mathjax-static`` in ``srcdir``
    and each folder above it (so a book built from a copy inside ``_build``, such
    as the student edition, finds the repository's copy).
    """
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    srcdir = Path(srcdir).resolve()
    candidates.extend(folder / "_build" / "mathjax-static" for folder in (srcdir, *srcdir.parents))
    for folder in candidates:
        if (folder / ENTRY).is_file():
            return folder.resolve()
    return None


def use_local_mathjax(app: Sphinx, config: Config) -> None:
    """``config-inited`` handler: switch to the local copy when it exists."""
    if not str(config.mathjax_path).startswith(CDN_PREFIX):
        return
    folder = find_static_dir(Path(app.srcdir))
    if folder is None:
        logger.info("local_mathjax: no local copy (make mathjax); using the CDN")
        return
    config.html_static_path = [*config.html_static_path, str(folder)]
    config.mathjax_path = ENTRY
    logger.info("local_mathjax: serving MathJax from %s", folder)


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the ``config-inited`` handler."""
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
