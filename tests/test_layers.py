"""The package's layers, read from the imports of every module (book/contributing.md draws them).

    errors, config, runtime, _validation,  the core: every layer may use it
    distributed
    data                                   datasets, IDX reader, transforms, synthetic sets
    classical          models              estimators | nn.Modules with a loss
    training                               the Trainer, callbacks, checkpoints, pretraining
    pretrained                             shipped weights and records, their one reader
    evaluation                             likelihoods, Fréchet, neighbours, Parzen, coverage
    exercises                              the checks of the exercises notebooks
    plot                                   figures, for notebooks; no layer below draws

A module may import only the layers listed for it in ALLOWED. Besides: the
trainer, its callbacks and checkpoints never import a model; only exercises,
evaluation and plot may import matplotlib; nobody imports the exercises or the
command-line module; subpackage ``__init__`` files only re-export.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "companion"

CORE = {"errors", "config", "runtime", "_validation", "distributed"}
ALLOWED: dict[str, set[str]] = {
    "<root>": {"runtime"},
    "errors": set(),
    "config": set(),
    "runtime": set(),
    "distributed": set(),
    "_validation": {"errors"},
    "plot": set(),
    "data": CORE,
    "classical": CORE,
    "models": CORE | {"data"},
    "training": CORE | {"data", "models"},
    "pretrained": CORE | {"data", "models"},
    "evaluation": CORE | {"data", "classical", "models", "training", "pretrained"},
    "exercises": CORE | {"data", "classical", "models", "training", "pretrained", "evaluation"},
}
NO_MODELS = {"companion.training.trainer", "companion.training.callbacks",
             "companion.training.checkpoint", "companion.training.parallel",
             "companion.training.tally"}  # fmt: skip
MAY_DRAW = {"exercises", "evaluation", "plot"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + (path.name == "__init__.py")]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a rule of this file's docstring."""
    found = []
    for module, targets in graph.items():
        own = layer(module)
        for target in targets:
            if target.split(".")[0] in {"matplotlib"} and own not in MAY_DRAW:
                found.append(f"{module} imports {target}: only {sorted(MAY_DRAW)} may draw")
            if not target.startswith("companion"):
                continue
            other = layer(target)
            if other == "exercises" and own != "exercises":
                found.append(f"{module} imports {target}: nothing imports the exercises")
            elif target.endswith("__main__"):
                found.append(f"{module} imports {target}: the command line is not a library")
            elif other != own and other not in ALLOWED.get(own, set()):
                found.append(f"{module} ({own}) imports {target} ({other})")
            if module in NO_MODELS and other == "models":
                found.append(f"{module} imports {target}: the trainer never imports a model")
    return sorted(found)


def test_every_module_is_in_a_known_layer():
    unknown = {layer(m) for m in GRAPH} - set(ALLOWED)
    assert not unknown, f"new layers {unknown}: add them to ALLOWED and the docstring"


def test_the_package_respects_its_layers():
    assert violations(GRAPH) == []


def test_the_graph_is_read_from_the_real_modules():
    assert "companion.runtime" in GRAPH["companion"]
    assert "companion.models.autoencoders" in GRAPH["companion.training.pretraining"]
    assert len([m for m in GRAPH if layer(m) == "models"]) >= 10


@pytest.mark.parametrize(
    ("module", "target", "rule"),
    [
        ("companion.classical.pca", "companion.models.vae", "(classical) imports"),
        ("companion.models.vae", "companion.training.trainer", "(models) imports"),
        ("companion.models.vae", "companion.plot", "(models) imports"),
        ("companion.models.vae", "matplotlib.pyplot", "may draw"),
        ("companion.data.datasets", "companion.models.vae", "(data) imports"),
        ("companion.training.trainer", "companion.models.vae", "never imports a model"),
        ("companion.evaluation.frechet", "companion.exercises.gans", "nothing imports"),
        ("companion.evaluation.frechet", "companion.data.__main__", "command line"),
    ],
)
def test_each_rule_catches_its_violation(module, target, rule):
    assert any(rule in v for v in violations({module: {target}}))


def test_subpackage_inits_only_reexport():
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        for node in tree.body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            reexport = isinstance(node, ast.ImportFrom)
            names = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in {"__all__", "__version__"} for t in node.targets
            )
            assert docstring or reexport or names, (
                f"{init.relative_to(ROOT)} line {node.lineno}: an __init__ only re-exports"
            )
