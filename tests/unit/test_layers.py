"""Dependencies between Courier's packages point one way: front ends (api, cni) -> driver -> pool -> neutron ->
binding -> config.

A front end (the Docker adapter in courier.api, a CNI one later) may use the core; the core never knows which
front end calls it, so nothing below courier.api imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import courier

ROOT = Path(courier.__file__).parent
BASE = {"exceptions", "metrics", "logcontext", "server", "__version__"}  # leaf modules anyone may use
ALLOWED = {
    "config": set(),
    "binding": {"config"},
    "neutron": {"binding", "config"},
    "pool": {"neutron", "binding", "config"},
    "driver": {"pool", "neutron", "binding", "config"},
    "api": {"driver", "config"},
    "cni": {"driver", "binding", "config"},
    "ops": {"neutron", "binding", "config"},
}
# Imported inside a function, on purpose: config gathers the plug drivers' own options (as oslo's list_opts does).
LAZY_EXCEPTIONS = {("config", "binding")}


def _imports(path: Path) -> set[str]:
    """The courier packages/modules a file imports (``courier.x.y`` -> ``x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "courier" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("courier.")}
    return found


def _package_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2:
            continue  # top-level modules: cli (wires everything) and the base modules
        package = parts[0]
        graph.setdefault(package, set()).update(_imports(path) - {package})
    return graph


def test_every_package_has_a_place_in_the_layers() -> None:
    assert set(_package_imports()) <= set(ALLOWED)


def test_dependencies_point_one_way() -> None:
    wrong = {package: sorted(imported - BASE - ALLOWED[package]
                             - {lower for upper, lower in LAZY_EXCEPTIONS if upper == package})
             for package, imported in _package_imports().items()}
    assert {p: w for p, w in wrong.items() if w} == {}


def test_base_modules_import_no_package() -> None:
    for name in BASE - {"__version__"}:
        assert _imports(ROOT / f"{name}.py") <= BASE, name


def test_the_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "endpoints.py"
    bad.write_text("from courier.api import models as m\nimport courier.driver.state\n")
    assert _imports(bad) == {"api", "driver"}
