"""The book shows the version of the companion package that its Colab cells install."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import load_script

import companion

ROOT = Path(__file__).resolve().parents[1]
install_cell = load_script("install_cell")


def test_install_cell_reads_the_package_version():
    assert install_cell.package_version() == companion.__version__


def test_footer_shows_the_version_and_its_tag():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    footer = config["html"]["extra_footer"]
    assert f"Version {companion.__version__} " in footer, (
        f"_config.yml html.extra_footer says {footer!r}; "
        f"write version {companion.__version__} (companion/__init__.py) there"
    )
    assert f"v{companion.__version__}" in footer


def test_install_cell_installs_the_tag_of_this_version():
    source = install_cell.install_cell_source("https://example.org/book")
    assert f'"git+https://example.org/book@v{companion.__version__}"' in source
