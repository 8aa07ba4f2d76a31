"""The first cell of every notebook: install the companion package on Colab only.

Usage: ``python scripts/install_cell.py`` rewrites that cell in every notebook
under book/ from the repository URL in _config.yml (the one place it is kept)
and the package version in companion/__init__.py: Colab installs the companion
from the tag ``v<version>``, the release the book was built with, unless the
environment variable ``COMPANION_INSTALL_SOURCE`` names another pip source;
``--check`` only reports notebooks that differ (tests run this check).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "# Colab: install the companion package"
# Set, the cell installs from this pip URL instead of the tag (``file:///…/companion-….whl``
# for example): the student-environment run (scripts/student_env.py) installs the wheel
# under test this way. The extra ``notebooks`` adds what the notebooks import beyond the
# package (scikit-learn, SciPy, pandas, ipywidgets).
SOURCE_VARIABLE = "COMPANION_INSTALL_SOURCE"
REQUIREMENT = "companion[notebooks]"  # what the install cell installs, with its extra
# (nbformat and yaml are imported where they are used: scripts/student_env.py --prepare
# imports the two names above under a bare python3)


def repository_url(root: Path = ROOT) -> str:
    """The repository URL from _config.yml."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    return config["repository"]["url"]


def package_version(root: Path = ROOT) -> str:
    """``companion.__version__``, read from companion/__init__.py without importing it."""
    tree = ast.parse((root / "companion" / "__init__.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    raise ValueError("companion/__init__.py defines no __version__ = '...' string")


def install_cell_source(url: str, version: str | None = None) -> str:
    """Source of the install cell: the companion at tag ``v<version>`` of the repository ``url``.

    ``version`` defaults to the package's own (``package_version()``).
    """
    version = package_version() if version is None else version
    return f"""{MARKER} (does nothing outside Colab).
import importlib.util
import os
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("companion") is None:
    release = "git+{url}@v{version}"
    package = "{REQUIREMENT} @ " + os.environ.get("{SOURCE_VARIABLE}", release)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)"""


def notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook of the book."""
    return sorted(
        p for p in (root / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def first_code_cell(nb):
    """The notebook's first code cell (a ``nbformat.NotebookNode``), or None."""
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def sync(path: Path, source: str, *, check: bool) -> bool:
    """Make ``path``'s first code cell the install cell; return True if it was already."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = first_code_cell(nb)
    if cell is not None and cell.source == source:
        return True
    if check:
        return False
    if cell is not None and cell.source.startswith(MARKER):
        cell.source = source
    else:
        new = nbformat.v4.new_code_cell(source)
        new.metadata["tags"] = ["remove-cell"]
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        nb.cells.insert(min(index, 1), new)
    nbformat.write(nb, path)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    args = parser.parse_args(argv)
    source = install_cell_source(repository_url())
    stale = [p for p in notebooks() if not sync(p, source, check=args.check)]
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
