"""Local MathJax: scripts/fetch_mathjax.py and the book/_ext/local_mathjax.py extension."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from helpers import load_file, load_script

ROOT = Path(__file__).resolve().parents[1]


fetch_mathjax = load_script("fetch_mathjax")
local_mathjax = load_file("local_mathjax", ROOT / "book" / "_ext" / "local_mathjax.py")


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_integrity_check_accepts_match_and_names_mismatch():
    data = b"mathjax"
    fetch_mathjax.check_integrity(data, _integrity(data))
    with pytest.raises(ValueError, match="expected"):
        fetch_mathjax.check_integrity(data + b"!", _integrity(data))


def test_unpack_keeps_only_es5_and_replaces_the_target(tmp_path):
    data = _tarball(
        {
            "package/es5/tex-chtml.js": b"// entry",
            "package/es5/output/font.woff": b"f",
            "package/package.json": b"{}",
        }
    )
    target = tmp_path / "static" / "mathjax"
    target.mkdir(parents=True)
    (target / "stale.js").write_text("old")
    fetch_mathjax.unpack_es5(data, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "output/font.woff",
        "tex-chtml.js",
    ]


def test_unpack_rejects_a_tarball_without_the_entry(tmp_path):
    with pytest.raises(ValueError, match="tex-chtml.js"):
        fetch_mathjax.unpack_es5(_tarball({"package/es5/other.js": b""}), tmp_path / "m")


def test_fetch_offline_fails_or_fails_soft(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch_mathjax, "TARBALL_URL", "http://127.0.0.1:9/mathjax.tgz")
    assert fetch_mathjax.main(["--dest", str(tmp_path)]) == 1
    assert fetch_mathjax.main(["--dest", str(tmp_path), "--soft"]) == 0
    assert "CDN" in capsys.readouterr().err
    assert not (tmp_path / "mathjax").exists()


def _static(folder: Path) -> Path:
    (folder / "mathjax").mkdir(parents=True)
    (folder / "mathjax" / "tex-chtml.js").write_text("// MathJax")
    return folder


def test_find_static_dir_env_then_srcdir_and_folders_above(tmp_path, monkeypatch):
    monkeypatch.delenv(local_mathjax.ENV_VAR, raising=False)
    book = tmp_path / "repo" / "_build" / "student" / "source"
    book.mkdir(parents=True)
    assert local_mathjax.find_static_dir(book) is None
    repo_static = _static(tmp_path / "repo" / "_build" / "mathjax-static")
    assert local_mathjax.find_static_dir(book) == repo_static.resolve()
    elsewhere = _static(tmp_path / "elsewhere")
    monkeypatch.setenv(local_mathjax.ENV_VAR, str(elsewhere))
    assert local_mathjax.find_static_dir(book) == elsewhere.resolve()


def _build(srcdir: Path, outdir: Path, overrides: dict | None = None) -> str:
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace

    (srcdir / "index.rst").write_text("Title\n=====\n\nMath :math:`x \\in \\R`.\n")
    (srcdir / "conf.py").write_text(
        "extensions = ['local_mathjax']\n"
        "mathjax3_config = {'tex': {'macros': {'R': r'\\mathbb{R}'}}}\n"
    )
    warnings = io.StringIO()
    with docutils_namespace():  # each build registers its nodes afresh
        app = Sphinx(
            str(srcdir),
            str(srcdir),
            str(outdir),
            str(outdir / ".doctrees"),
            "html",
            confoverrides=overrides or {},
            status=None,
            warning=warnings,
            warningiserror=True,
        )
        app.build()
    assert warnings.getvalue() == ""
    return (outdir / "index.html").read_text()


@pytest.fixture
def ext_on_path(monkeypatch):
    monkeypatch.delenv(local_mathjax.ENV_VAR, raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "book" / "_ext"))


def test_sphinx_uses_the_cdn_without_a_local_copy(tmp_path, ext_on_path):
    src = tmp_path / "book"
    src.mkdir()
    html = _build(src, tmp_path / "out")
    assert "cdn.jsdelivr.net/npm/mathjax@3" in html
    assert "mathbb{R}" in html  # mathjax3_config still reaches the page


def test_sphinx_serves_the_local_copy(tmp_path, ext_on_path):
    src = tmp_path / "book"
    src.mkdir()
    _static(src / "_build" / "mathjax-static")
    out = tmp_path / "out"
    html = _build(src, out)
    assert 'src="_static/mathjax/tex-chtml.js' in html
    assert "cdn.jsdelivr.net" not in html
    assert "mathbb{R}" in html
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_sphinx_keeps_an_explicit_mathjax_path(tmp_path, ext_on_path):
    src = tmp_path / "book"
    src.mkdir()
    _static(src / "_build" / "mathjax-static")
    html = _build(src, tmp_path / "out", {"mathjax_path": "https://example.org/mj.js"})
    assert "https://example.org/mj.js" in html
