"""Fetch MathJax 3 from the npm registry so the book typesets math offline.

The npm package's ``es5/`` folder is unpacked as ``<dest>/mathjax/`` (default
``_build/mathjax-static/mathjax``). ``book/_ext/local_mathjax.py`` serves that
copy when it exists; without it the built pages load MathJax from the CDN.
The tarball is checked against the registry's published sha512 before use.

Usage::

    python scripts/fetch_mathjax.py            # fails (exit 1) when offline
    python scripts/fetch_mathjax.py --soft     # warns and exits 0 instead
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "3.2.2"
TARBALL_URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{VERSION}.tgz"
# ``npm view mathjax@3.2.2 dist.integrity``
INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
DEFAULT_DEST = Path(__file__).resolve().parents[1] / "_build" / "mathjax-static"
ENTRY = "tex-chtml.js"


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """Raise ``ValueError`` unless ``data`` matches the npm ``integrity`` string."""
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise ValueError(
            f"downloaded MathJax tarball has {algorithm} {digest!r}, expected "
            f"{expected!r}; delete any proxy cache and fetch again"
        )


def unpack_es5(data: bytes, target: Path) -> None:
    """Unpack the tarball's ``package/es5/`` into ``target`` (replaced atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/es5/")]
            tar.extractall(tmp, members=members, filter="data")
        es5 = Path(tmp) / "package" / "es5"
        if not (es5 / ENTRY).is_file():
            raise ValueError(f"the MathJax tarball has no es5/{ENTRY}")
        if target.exists():
            shutil.rmtree(target)
        es5.rename(target)


def fetch(dest: Path = DEFAULT_DEST, timeout: float = 60.0) -> Path:
    """Download, verify and unpack MathJax into ``dest / "mathjax"``; return that folder."""
    target = dest / "mathjax"
    if (target / ENTRY).is_file():
        return target
    with urllib.request.urlopen(TARBALL_URL, timeout=timeout) as response:
        data = response.read()
    check_integrity(data)
    unpack_es5(data, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument(
        "--soft", action="store_true", help="on failure warn and exit 0 (CDN fallback)"
    )
    args = parser.parse_args(argv)
    try:
        target = fetch(args.dest)
    except (OSError, ValueError, tarfile.TarError) as err:
        print(f"could not fetch MathJax {VERSION}: {err}", file=sys.stderr)
        if args.soft:
            print("the book will load MathJax from the CDN instead", file=sys.stderr)
            return 0
        return 1
    print(f"MathJax {VERSION} in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
