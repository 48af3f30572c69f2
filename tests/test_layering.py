"""The package's import layers (docs/architecture.md draws them): each subpackage imports only
the ones below it, lazy imports inside functions included, so a change low in the stack
(decoding, the model) never has to know about a command, the service or training."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PACKAGE = REPO / "vidfake"

# subpackage -> the subpackages it may import (from the bottom: utils, then media and model)
ALLOWED: dict[str, set[str]] = {
    "utils": set(),
    "examples": set(),
    "extract": {"utils"},
    "temporal": {"utils"},
    "checkpoints": {"utils", "extract", "temporal"},
    "distributed": {"utils", "extract"},
    "scoring": {"utils", "extract", "temporal", "checkpoints", "distributed"},
    "testing": {"utils", "extract", "temporal", "checkpoints", "scoring"},
    "eval": {"utils", "extract", "temporal", "checkpoints", "scoring", "distributed"},
    "serve": {"utils", "extract", "temporal", "checkpoints", "scoring", "examples"},
    "train": {"utils", "extract", "temporal", "checkpoints", "eval"},
    "cli": {"utils", "extract", "temporal", "checkpoints", "scoring", "distributed", "eval", "serve", "train",
            "examples"},
}
ROOT_NAMES = {"__version__"}  # package metadata in vidfake/__init__.py: anyone may read it


def imported_units(path: Path) -> set[str]:
    """The vidfake subpackages (or root names) a module imports, anywhere in its body."""
    units = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vidfake":
            parts = node.module.split(".")
            units |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            units |= {a.name.split(".")[1] for a in node.names if a.name.startswith("vidfake.")}
    return units


def layer_violations(package: Path, allowed: dict[str, set[str]]) -> list[str]:
    """``path imports X`` for every import across subpackages that ``allowed`` does not list,
    and ``path: not in any layer`` for a module outside the listed subpackages."""
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if len(relative.parts) == 1:  # __init__.py / __main__.py: the package's front door
            continue
        unit = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if unit not in allowed:
            found.append(f"{relative}: not in any layer")
            continue
        for target in sorted(imported_units(path) - {unit} - ROOT_NAMES):
            if target not in allowed[unit]:
                found.append(f"{relative} imports vidfake.{target}")
    return found


def test_every_subpackage_imports_only_the_layers_below_it():
    violations = layer_violations(PACKAGE, ALLOWED)
    assert not violations, "imports against the layers of docs/architecture.md:\n" + "\n".join(violations)


def test_no_loose_modules_beside_the_subpackages():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert not loose, f"put these in a subpackage: {loose}"


def test_the_layers_have_no_cycle():
    done: set[str] = set()

    def visit(unit: str, path: tuple[str, ...]) -> None:
        assert unit not in path, f"import cycle: {' -> '.join((*path, unit))}"
        for below in ALLOWED[unit]:
            visit(below, (*path, unit))
        done.add(unit)

    for unit in ALLOWED:
        visit(unit, ())
    assert done == set(ALLOWED)


def test_the_check_names_an_upward_import_and_a_lazy_one(tmp_path):
    package = tmp_path / "vidfake"
    for folder in ("low", "high"):
        (package / folder).mkdir(parents=True)
    (package / "low" / "a.py").write_text("def f():\n    from vidfake.high.b import g\n    return g\n")
    (package / "high" / "b.py").write_text("from vidfake.low import a\nfrom vidfake import __version__\n")
    (package / "odd").mkdir()
    (package / "odd" / "c.py").write_text("")
    assert layer_violations(package, {"low": set(), "high": {"low"}}) == [
        "low/a.py imports vidfake.high", "odd/c.py: not in any layer"]
