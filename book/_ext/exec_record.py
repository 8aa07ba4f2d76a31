"""Record how each notebook ran in this build: ``_build/notebook_runs.json``; and keep
launch buttons to pages that the Jupyter edition holds.

MyST-NB keeps, for every notebook page, how it was executed in this build (or
taken from the execution cache) and how long that took; the execution status page
shows it with ``{nb-exec-table}``. This extension writes the same records to
``notebook_runs.json`` next to the HTML folder when the build ends, so that the
notebook timing report (``benchmarks/notebooks.py --from-builds``) reuses the
book's own execution instead of running every notebook again.
"""

from __future__ import annotations

import json
from pathlib import Path

from sphinx.application import Sphinx


def write_runs(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None:
        return
    metadata = getattr(app.env, "nb_metadata", {})
    runs = {}
    for docname, data in sorted(metadata.items()):
        run = data.get("exec_data")
        if run:
            runs[docname] = {
                "seconds": run.get("runtime"),
                "method": run.get("method"),
                "succeeded": run.get("succeeded"),
                "mtime": run.get("mtime"),
            }
    out = Path(app.outdir).parent / "notebook_runs.json"
    out.write_text(json.dumps(runs, indent=2) + "\n")


def drop_launch_buttons_of_text_notebooks(app, pagename, templatename, context, doctree):
    """Pages written as MyST text notebooks (``.md`` with a kernelspec: the theory pages,
    which run code to draw their figures) are not in the Jupyter edition, which holds the
    ``.ipynb`` notebooks; Colab and Binder cannot open the ``.md``, so no launch button."""
    if Path(app.env.doc2path(pagename)).suffix != ".md":
        return
    buttons = context.get("header_buttons")
    if buttons:
        context["header_buttons"] = [b for b in buttons if b.get("label") != "launch-buttons"]


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", write_runs)
    # after sphinx-book-theme's add_launch_buttons (priority 501), before the page renders
    app.connect("html-page-context", drop_launch_buttons_of_text_notebooks, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
