"""The one rule of DESIGN.md that is not negotiable: imports point one way, searchspace <- latency_tables <- nas <- service.

Every module's imports are read from its syntax tree (function-level imports
included, since the project imports heavy modules lazily), so an upward
import anywhere fails here, not in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("searchspace", "latency_tables", "nas", "service")


def imported_packages(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``tree``; relative imports resolved against ``module``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, module.split(".")[0]))  # a relative import stays in its package
            elif node.module:
                out.append((node.lineno, node.module.split(".")[0]))
    return out


def upward_imports(package: str) -> list[str]:
    rank = LAYERS.index(package)
    higher = set(LAYERS[rank + 1 :])
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text(), filename=str(path))
        bad += [
            f"{path.relative_to(ROOT)}:{line} imports {target}"
            for line, target in imported_packages(tree, module)
            if target in higher
        ]
    return bad


@pytest.mark.parametrize("package", LAYERS[:-1])
def test_no_module_imports_a_higher_layer(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import() -> None:
    tree = ast.parse("def f():\n    from service.jobs import create_job\nimport nas.search\nfrom . import x\n")
    assert sorted(imported_packages(tree, "latency_tables.table")) == [
        (2, "service"),
        (3, "nas"),
        (4, "latency_tables"),
    ]
