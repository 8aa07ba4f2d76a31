"""Helpers the tests share: loading the repository's scripts as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_file(name: str, path: Path) -> ModuleType:
    """Import the Python file ``path`` as the module ``name`` (registered in sys.modules)."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module."""
    return load_file(name, ROOT / "scripts" / f"{name}.py")


def package_modules(package: ModuleType | None = None) -> list[ModuleType]:
    """Every module of ``companion`` (default), subpackages included, imported.

    The command-line entry point (``__main__``) is left out: importing it is harmless,
    but it is a script, not a place where models or estimators live.
    """
    import pkgutil

    if package is None:
        import companion as package
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__"):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def fashion_mnist_files() -> dict[str, Path] | None:
    """Fashion-MNIST's four files where the loader looks for them (plain or .gz), by file
    name, or None when one is missing; nothing is read or downloaded. Tests that need the
    real data are marked ``needs_data`` and skipped (tests/conftest.py) when this is None."""
    from companion.data import FASHION_MNIST
    from companion.data.datasets import search_dirs

    found = {}
    for file in FASHION_MNIST.files.values():
        candidates = (
            folder / name
            for folder in search_dirs(FASHION_MNIST)
            for name in (file.name, f"{file.name}.gz")
        )
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
        found[file.name] = path
    return found
