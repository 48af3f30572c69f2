"""No class or function in ``vidfake/`` is longer than 150 lines: a unit that long does
more than one job and is hard to read, test or time (``Scorer`` was split into stages for
this). The check names every offender with its file and line."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PACKAGE = REPO / "vidfake"
MAX_LINES = 150


def long_definitions(root: Path, limit: int) -> list[str]:
    """``path:line name (N lines)`` for each class or function under ``root`` longer than
    ``limit`` lines, nested ones included (a class's methods count toward it too)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_class_or_function_in_vidfake_is_over_150_lines():
    too_long = long_definitions(PACKAGE, MAX_LINES)
    assert not too_long, f"split these along their responsibilities (at most {MAX_LINES} lines each):\n" + "\n".join(too_long)


def test_the_check_names_every_long_definition_and_only_those(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "big.py").write_text("class Big:\n" + "    x = 1\n" * 150 + "\n\ndef small():\n    pass\n")
    body = "".join(f"    y{i} = {i}\n" for i in range(149))
    (package / "sub" / "edge.py").write_text(f"async def long():\n{body}    return 0\n\n\ndef fits():\n{body}")
    assert long_definitions(package, 150) == ["pkg/big.py:1 Big (151 lines)", "pkg/sub/edge.py:1 long (151 lines)"]


def undocumented_definitions(root: Path) -> list[str]:
    """``path:line name`` for each public module-level class or function under ``root``,
    and each public method or property of a public class, that has no docstring. Names
    starting with ``_`` (dunder methods included) are private and skipped."""
    found = []
    definitions = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if not isinstance(node, definitions) or node.name.startswith("_"):
                continue
            members = [m for m in node.body if isinstance(m, definitions)] if isinstance(node, ast.ClassDef) else []
            for unit, name in [(node, node.name)] + [(m, f"{node.name}.{m.name}") for m in members]:
                if not unit.name.startswith("_") and ast.get_docstring(unit) is None:
                    found.append(f"{path.relative_to(root.parent)}:{unit.lineno} {name}")
    return found


def test_every_public_class_and_function_in_vidfake_has_a_docstring():
    missing = undocumented_definitions(PACKAGE)
    assert not missing, "add a short docstring saying what each is for:\n" + "\n".join(missing)


def test_the_docstring_check_names_every_undocumented_public_definition_and_only_those(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text(
        'def bare():\n    pass\n\n\ndef told():\n    """Why."""\n\n\ndef _private():\n    pass\n\n\n'
        'class Shown:\n    """Why."""\n\n    def __init__(self):\n        pass\n\n    def method(self):\n        pass\n\n'
        '    @property\n    def prop(self):\n        """Why."""\n        return 1\n\n    def _helper(self):\n        pass\n\n\n'
        'class _Hidden:\n    def method(self):\n        pass\n'
    )
    (package / "sub" / "b.py").write_text(
        'class Bare:\n    x = 1\n\n\nasync def fetch():\n    def inner():\n        pass\n    return inner\n'
    )
    assert undocumented_definitions(package) == [
        "pkg/a.py:1 bare", "pkg/a.py:19 Shown.method", "pkg/sub/b.py:1 Bare", "pkg/sub/b.py:5 fetch",
    ]
