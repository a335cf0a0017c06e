"""The import contract: no import circles, and the layers of the house.

Every `import` in codelace_box/ and admin_tui/ is read from the source (ast, nothing is
imported), wherever it stands: at module level, under TYPE_CHECKING or inside a function.
From top to bottom: the CLI, the server, the HTTP API and the dashboard (clients), the feature
packages, db, then the base modules (config, crypto, money, errors). An import points down or
sideways within a layer, never up; the HTTP API and the dashboard never import each other;
below the clients nothing imports sanic, click or textual; and the dashboard reaches
codelace_box only through its services door (services.py, with service_checks.py,
service_audit.py, service_echo.py and catalog_services.py beside it).
"""

from __future__ import annotations

import ast
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("codelace_box", "admin_tui")

LAYERS: tuple[tuple[str, ...], ...] = (
    ("codelace_box.__main__", "codelace_box.cli"),
    (
        "codelace_box.server",
        "codelace_box.stopping",
        "codelace_box.supervisor",
        "codelace_box.http_guard",
        "codelace_box.body_request",
        "codelace_box.http_framing",
        "codelace_box.listen_setup",
        "codelace_box.sanic_env",
        "codelace_box.sanic_config",
        "codelace_box.sanic_logging",
    ),
    ("codelace_box.api", "admin_tui"),
    (
        "codelace_box.accounts",
        "codelace_box.billing",
        "codelace_box.gateway",
        "codelace_box.catalog",
        "codelace_box.reports",
        "codelace_box.doctor",
        "codelace_box.audit",
        "codelace_box.restore",
        "codelace_box.upkeep",
    ),
    ("codelace_box.providers",),
    ("codelace_box.db",),
    (
        "codelace_box",
        "codelace_box.config",
        "codelace_box.crypto",
        "codelace_box.jsonwire",
        "codelace_box.money",
        "codelace_box.portal",
        "codelace_box.private_files",
        "codelace_box.launcher",
        "codelace_box.parent_death",
        "codelace_box.logformat",
        "codelace_box.live_refs",
        "codelace_box.logwriter",
        "codelace_box.metrics",
        "codelace_box.metric_counting",
        "codelace_box.metrics_folders",
        "codelace_box.metric_sums",
        "codelace_box.metric_files",
        "codelace_box.metric_fold",
        "codelace_box.tls_client",
    ),
    ("codelace_box.errors",),
)
INDEPENDENT = (("codelace_box.api", "admin_tui"),)
FEATURES_FROM = 3  # LAYERS[3:] are the features and what they stand on
FRAMEWORKS = frozenset({"sanic", "click", "textual"})
ADMIN_DOORS = frozenset(
    {
        "admin_tui.services",
        "admin_tui.service_checks",
        "admin_tui.service_audit",
        "admin_tui.service_echo",
        "admin_tui.catalog_services",
    }
)


@dataclass(frozen=True)
class Import:
    """One import statement's target: a module of ours, or an outside package's top name."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def find_modules(repo: Path) -> dict[str, Path]:
    """Every module of the two packages by dotted name (a package by its __init__.py)."""
    modules: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            parts = path.relative_to(repo).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module that `name` (a module or a name inside one) belongs to, if it is ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement asks for (relative imports made absolute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names]


# A module's import targets by (its source, name, whether a package): the tests that break the
# contract on purpose change one file of the tree, so the others are not parsed again.
_PARSED: dict[tuple[str, str, bool], list[tuple[str, int]]] = {}


def import_targets(path: Path, module: str) -> list[tuple[str, int]]:
    """The dotted names every import statement of a module asks for, with their lines."""
    is_package = path.name == "__init__.py"
    source = path.read_text(encoding="utf-8")
    key = (source, module, is_package)
    if key not in _PARSED:
        _PARSED[key] = [
            (name, node.lineno)
            for node in ast.walk(ast.parse(source, str(path)))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in targets(node, module, is_package)
        ]
    return _PARSED[key]


def read_imports(modules: dict[str, Path]) -> list[Import]:
    """Every import of every module; our modules by name, outside packages by top name."""
    found: list[Import] = []
    for module, path in modules.items():
        for name, line in import_targets(path, module):
            ours = owner(name, modules)
            if ours is None and name.split(".")[0] not in ROOTS:
                found.append(Import(module, name.split(".")[0], line))
            elif ours is not None and ours != module:
                found.append(Import(module, ours, line))
    return found


def layer_of(module: str) -> str:
    """The longest LAYERS entry that `module` is or lies inside."""
    entries = [entry for layer in LAYERS for entry in layer]
    matches = [
        e for e in entries if module == e or (e != "codelace_box" and module.startswith(e + "."))
    ]
    assert matches, f"{module} is in no layer of the import contract: add it to LAYERS"
    return max(matches, key=len)


def rank(module: str) -> int:
    entry = layer_of(module)
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = [stack.pop()]
                    while group[-1] != node:
                        group.append(stack.pop())
                    on_stack.difference_update(group)
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def sibling_edges(imports: list[Import], modules: dict[str, Path]) -> dict[str, set[str]]:
    """Imports between the children of each package, a child standing for all it holds."""
    edges: dict[str, set[str]] = defaultdict(set)
    for package in (m for m, p in modules.items() if p.name == "__init__.py"):
        prefix = package + "."
        for imp in imports:
            if imp.importer.startswith(prefix) and imp.imported.startswith(prefix):
                a = prefix + imp.importer[len(prefix) :].split(".")[0]
                b = prefix + imp.imported[len(prefix) :].split(".")[0]
                if a != b:
                    edges[a].add(b)
                    edges.setdefault(b, set())
    return edges


def contract_breaches(repo: Path) -> list[str]:
    """Every breach of the contract in the source tree under `repo`, one line each."""
    modules = find_modules(repo)
    imports = read_imports(modules)
    ours = [imp for imp in imports if imp.imported in modules]
    module_edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in ours:
        module_edges[imp.importer].add(imp.imported)
    breaches = [f"import circle: {' <-> '.join(g)}" for g in circles(module_edges)]
    breaches += [
        f"import circle between sibling packages: {' <-> '.join(g)}"
        for g in circles(sibling_edges(ours, modules))
    ]
    breaches += [
        f"imports upward: {imp}" for imp in ours if rank(imp.importer) > rank(imp.imported)
    ]
    breaches += [f"imports across independent clients: {imp}" for imp in ours if crosses(imp)]
    breaches += [
        f"a feature, db or base module imports a client framework: {imp}"
        for imp in imports
        if imp.imported in FRAMEWORKS and rank(imp.importer) >= FEATURES_FROM
    ]
    breaches += [
        f"the dashboard bypasses admin_tui/services.py: {imp}"
        for imp in imports
        if imp.importer.startswith("admin_tui")
        and imp.importer not in ADMIN_DOORS
        and (imp.imported.startswith("codelace_box") or imp.imported == "sanic")
    ]
    return breaches


def crosses(imp: Import) -> bool:
    a, b = layer_of(imp.importer), layer_of(imp.imported)
    return any({a, b} == set(pair) for pair in INDEPENDENT)


def test_the_source_tree_keeps_the_import_contract() -> None:
    assert contract_breaches(REPO) == []


def test_every_module_and_package_is_read() -> None:
    modules = find_modules(REPO)
    assert {"codelace_box.config", "admin_tui.screens.base", "codelace_box.db.core"} <= set(modules)
    assert len(read_imports(modules)) > 300


BAD_IMPORTS = [
    ("codelace_box/config/rules.py", "from codelace_box.config import Config", "import circle"),
    ("admin_tui/screens/base.py", "from admin_tui.screens import users", "import circle"),
    ("codelace_box/gateway/routing.py", "import codelace_box.api.errors", "imports upward"),
    ("codelace_box/db/core.py", "def f() -> None:\n    import codelace_box.billing", "upward"),
    (
        "codelace_box/money.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import codelace_box.db.core",
        "imports upward",
    ),
    ("codelace_box/api/public.py", "import admin_tui.views", "independent clients"),
    ("codelace_box/billing/ledger.py", "import click", "client framework"),
    ("codelace_box/catalog/models.py", "from textual.app import App", "client framework"),
    ("admin_tui/screens/users.py", "from codelace_box.db import core", "bypasses"),
    ("admin_tui/app.py", "import sanic", "bypasses"),
    ("admin_tui/services.py", "from codelace_box import server", "imports upward"),
    ("codelace_box/accounts/otp.py", "from ..billing import ledger", "sibling packages"),
]


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for root in ROOTS:
        shutil.copytree(REPO / root, copy / root, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize(("path", "line", "breach"), BAD_IMPORTS)
def test_a_bad_import_breaks_the_contract(
    tree_copy: Path, path: str, line: str, breach: str
) -> None:
    source = tree_copy / path
    text = source.read_text(encoding="utf-8")
    source.write_text(f"{text}\n{line}\n", encoding="utf-8")
    try:
        found = contract_breaches(tree_copy)
    finally:
        source.write_text(text, encoding="utf-8")
    assert any(breach in b for b in found), found
