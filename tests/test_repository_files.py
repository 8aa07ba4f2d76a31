"""Checks of the repository itself: notebooks, install cell, environment, URLs, licences."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
import types
from pathlib import Path

import nbformat
import pytest
import yaml
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
install_cell = load_script("install_cell")

NOTEBOOKS = install_cell.notebooks()
REAL_FIND_SPEC = importlib.util.find_spec
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def test_there_are_notebooks():
    assert any(p.name == "fashion_mnist.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_starts_with_the_install_cell(path):
    source = install_cell.install_cell_source(CONFIG["repository"]["url"])
    cell = install_cell.first_code_cell(nbformat.read(path, as_version=4))
    assert cell is not None and cell.source == source, (
        f"{path.name}: first code cell is not the install cell; run python scripts/install_cell.py"
    )


def run_install_cell(monkeypatch, *, in_colab: bool, installed: bool) -> list:
    """Execute the install cell's real source with subprocess.run recorded, not run."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kw: calls.append((args, kw)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)

    def find_spec(name, *args):
        if name == "companion" and not installed:
            return None
        return REAL_FIND_SPEC(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    exec(install_cell.install_cell_source(CONFIG["repository"]["url"]), {})
    return calls


def test_install_cell_installs_on_colab_only(monkeypatch):
    calls = run_install_cell(monkeypatch, in_colab=True, installed=False)
    assert len(calls) == 1
    command = calls[0][0][0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    tag = f"git+{CONFIG['repository']['url']}@v{install_cell.package_version()}"
    assert command[-1] == f"companion[notebooks] @ {tag}"
    assert run_install_cell(monkeypatch, in_colab=False, installed=False) == []
    assert run_install_cell(monkeypatch, in_colab=True, installed=True) == []


def test_install_cell_takes_its_source_from_the_environment(monkeypatch):
    """The student-environment run installs the wheel under test through the cell itself."""
    monkeypatch.setenv(install_cell.SOURCE_VARIABLE, "file:///tmp/companion-0-py3-none-any.whl")
    calls = run_install_cell(monkeypatch, in_colab=True, installed=False)
    assert calls[0][0][0][-1] == "companion[notebooks] @ file:///tmp/companion-0-py3-none-any.whl"


# Reading these from a notebook works only inside a clone of the repository.
REPOSITORY_PATHS = {
    "benchmarks/": re.compile(r"benchmarks/"),
    "a ..-relative path": re.compile(r"""(^|["'/\s(])\.\./|["']\.\.["']"""),
    "Path.cwd().parent": re.compile(r"cwd\(\)\s*\.\s*parent"),
    "scripts/": re.compile(r"""["']scripts/"""),
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_code_reads_no_repository_path(path):
    nb = nbformat.read(path, as_version=4)
    found = [
        f"cell {i}: {what}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for what, pattern in REPOSITORY_PATHS.items()
        if pattern.search(cell.source)
    ]
    assert not found, (
        f"{path.name} reads repository paths ({found}); students run it outside a clone: "
        "ship what it reads in companion/pretrained/records/ (companion.pretrained.load_record) "
        "or compute it"
    )


# what `pip install companion[notebooks]` gives a student, by import name
_DISTRIBUTION_IMPORTS = {"scikit-learn": "sklearn", "ipywidgets": "ipywidgets"}
# in every Jupyter kernel (Colab, Binder, a local Jupyter) without being a dependency
_KERNEL_IMPORTS = {"IPython", "ipykernel"}


def student_imports() -> set[str]:
    """Top-level import names a notebook may use: the standard library, the package, its
    dependencies and its `notebooks` extra, and what any Jupyter kernel has."""
    names = set(sys.stdlib_module_names) | {"companion"} | _KERNEL_IMPORTS
    project = PYPROJECT["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["notebooks"]:
        dist = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        names.add(_DISTRIBUTION_IMPORTS.get(dist, dist.replace("-", "_")))
    return names


def imported_modules(source: str) -> set[str]:
    """Top-level modules a code cell imports (IPython magics and shell lines skipped)."""
    import ast

    code = "\n".join(
        line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_imports_only_what_a_student_install_has(path):
    """A notebook runs after `pip install companion[notebooks]` (Colab, Binder): importing
    a book-build tool such as myst_nb, or a test dependency, fails there."""
    allowed = student_imports()
    nb = nbformat.read(path, as_version=4)
    found = {
        (i, module)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for module in imported_modules(cell.source)
        if module not in allowed
    }
    assert not found, (
        f"{path.name} imports {sorted(found)}, which `pip install companion[notebooks]` does "
        "not install: use the package (companion.plot.glue for MyST-NB's glue) or add the "
        "dependency to the `notebooks` extra in pyproject.toml"
    )


def test_student_imports_reject_book_tools():
    allowed = student_imports()
    assert {"torch", "numpy", "matplotlib", "sklearn", "scipy", "tqdm", "json"} <= allowed
    assert not {"myst_nb", "nbval", "pytest", "hypothesis"} & allowed
    assert imported_modules("from myst_nb import glue\nimport a.b as c\n%matplotlib inline") == {
        "myst_nb",
        "a",
    }


@pytest.mark.parametrize(
    "source",
    [
        'p = Path.cwd().parents[1] / "x.json"',
        "p = Path.cwd().parent / 'x'",
        'open("../benchmarks/results/gan.json")',
        'json.load(open("../data.json"))',
    ],
)
def test_repository_path_patterns_catch_clone_only_reads(source):
    assert any(p.search(source) for p in REPOSITORY_PATHS.values())


def test_repository_url_has_one_source():
    url = CONFIG["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url)
    assert set(PYPROJECT["project"]["urls"].values()) == {url}
    readme = (ROOT / "README.md").read_text()
    found = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", readme))
    assert found <= {url}, f"README mentions other repositories: {found - {url}}"


def _requirement_map(requirements):
    out = {}
    for req in requirements:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()
        out[name] = req[len(name) :].strip()
    return out


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and dep != "pip":
            name = re.match(r"[A-Za-z0-9_.-]+", dep).group(0).lower()
            conda[name] = dep[len(name) :].strip()
    runtime = _requirement_map(PYPROJECT["project"]["dependencies"])
    rename = {"torch": "pytorch"}
    for name, spec_ in runtime.items():
        conda_name = rename.get(name, name)
        assert conda_name in conda, f"{conda_name} is in pyproject but not in environment.yml"
        assert conda[conda_name] == spec_, (
            f"{name}: pyproject {spec_!r} vs conda {conda[conda_name]!r}"
        )
    assert conda["python"] == PYPROJECT["project"]["requires-python"]
    notebooks = _requirement_map(PYPROJECT["project"]["optional-dependencies"]["notebooks"])
    for name, spec_ in notebooks.items():
        assert conda.get(name) == spec_, (
            f"{name}: the notebooks extra says {spec_!r}, environment.yml {conda.get(name)!r}"
        )
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    tag = f"companion @ git+{CONFIG['repository']['url']}@v{install_cell.package_version()}"
    assert pip_section == [tag], (
        f"environment.yml's pip section is {pip_section}; Binder must install {tag!r}, "
        "the release the book was built with"
    )


def test_constraints_pin_torch_but_the_package_does_not():
    constraints = (ROOT / "ci" / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in constraints
    assert not any("==" in dep for dep in PYPROJECT["project"]["dependencies"])


def test_licences_name_code_and_text():
    text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in text and "CC BY 4.0" in text


def test_package_data_ships_every_weight_and_record():
    """The wheel must carry what companion.pretrained reads (a student has no clone)."""
    from fnmatch import fnmatch

    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    shipped = ROOT / "companion" / "pretrained"
    files = [p for p in shipped.rglob("*") if p.is_file() and p.suffix in {".pt", ".json"}]
    assert len(files) >= 10
    for path in files:
        covered = any(
            path.is_relative_to(ROOT / package.replace(".", "/"))
            and any(
                fnmatch(path.relative_to(ROOT / package.replace(".", "/")).as_posix(), pattern)
                for pattern in patterns
            )
            for package, patterns in data.items()
        )
        assert covered, f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data]"
