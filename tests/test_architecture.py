"""The layer contract of `sdk/inferwatch`, read from the source with `ast` (nothing is imported).

Layers, by the first name under ``inferwatch``:

* core: ``instrument``, ``summaries``, ``export`` and the shared modules ``semconv``, ``errors``,
  ``forks``, ``nowait``, ``attributes``, ``durations``, ``version``: what a serving process needs
  to decorate a function and export its telemetry; and ``figures`` (plots for HTML reports),
  shared by the drift and incident reports;
* storage and query: ``store``, ``query``;
* windowing shared by the features: ``windows``;
* features: ``drift``, ``delayed_labels``, ``ranking``, ``validation``, ``alerts``;
* command line: ``cli``;
* the facade ``inferwatch/__init__.py``, the composition root: it may import anything, and is
  imported by nothing inside the package.

What counts as an import: every ``import`` and ``from ... import`` statement anywhere in a
module, including those inside functions (lazy imports still tie the layers together: they only
move the cost to the first call), plus ``importlib.import_module`` with a literal name. Imports
inside an ``if TYPE_CHECKING:`` block are type-only (never executed), so they are allowed and
skipped; its ``else:`` branch runs and counts. ``from inferwatch.x import y`` imports the module
``inferwatch.x.y`` when that file exists, else the module ``inferwatch.x``.

A feature may import the core, ``windows``, ``store`` and ``query``, and another feature only
through an edge declared in `FEATURE_EDGES` with its reason.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sdk" / "inferwatch"
FACADE = "(facade)"

CORE = frozenset(
    {"instrument", "summaries", "export"}
    | {"semconv", "errors", "forks", "nowait", "attributes", "durations", "version", "figures"}
)
STORAGE = frozenset({"store", "query"})
WINDOWS = frozenset({"windows"})
FEATURES = frozenset({"drift", "delayed_labels", "ranking", "validation", "alerts"})
COMMAND_LINE = frozenset({"cli"})
LAYERS = {
    "core": CORE,
    "storage": STORAGE,
    "windows": WINDOWS,
    "features": FEATURES,
    "command line": COMMAND_LINE,
}

# The one place where a feature may depend on another. Each edge is (importer, imported): the
# importer's code needs the other feature's concept, not a helper that happens to live there
# (such a helper belongs in `windows/` or the core). `drift -> query` (profile tables rendered
# through `query.render`) needs no entry: every feature may use the query layer.
FEATURE_EDGES: dict[tuple[str, str], str] = {
    ("validation", "drift"): "a Schema is built from a drift Profile",
    ("ranking", "delayed_labels"): "clicks are delayed labels of served lists",
}


@dataclass(frozen=True)
class Rule:
    name: str
    importers: frozenset[str]
    forbidden: frozenset[str]
    why: str


RULES = [
    Rule(
        "core imports no feature, query nor cli",
        CORE,
        FEATURES | {"query"} | COMMAND_LINE,
        "a serving process that only decorates a function must not load the features",
    ),
    Rule(
        "store and query import neither the instrument core nor features",
        STORAGE,
        frozenset({"instrument", "summaries"}) | FEATURES,
        "reading telemetry back must not depend on how it is produced",
    ),
    Rule(
        "windows imports no feature",
        WINDOWS,
        FEATURES,
        "the windowing shared by the features cannot depend on one of them",
    ),
    Rule(
        "only the command line imports the command line",
        frozenset().union(*LAYERS.values()) - COMMAND_LINE,
        COMMAND_LINE,
        "the command line is the top layer",
    ),
    Rule(
        "nothing inside the package imports the facade",
        frozenset().union(*LAYERS.values()),
        frozenset({FACADE}),
        "the facade imports everything: importing it from inside is a cycle through every layer",
    ),
]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    type_only: bool
    """Inside an ``if TYPE_CHECKING:`` block: never executed, so no rule applies to it."""

    @property
    def source(self) -> str:
        return part(self.importer)

    @property
    def target(self) -> str:
        return part(self.imported)


def part(module: str) -> str:
    """The layer unit of a module: the first name under ``inferwatch``, or the facade."""
    names = module.split(".")
    return names[1] if len(names) > 1 else FACADE


def module_names() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        names = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if names[-1] == "__init__":
            names.pop()
        found[".".join(names)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _nodes(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under `node`, flagged when it is inside an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        yield child, type_only
        if isinstance(child, ast.If) and _type_checking(child.test):
            for inner in child.body:
                yield inner, True
                yield from _nodes(inner, True)
            for inner in child.orelse:
                yield inner, type_only
                yield from _nodes(inner, type_only)
        else:
            yield from _nodes(child, type_only)


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> list[Import]:
    """The ``inferwatch`` modules `module` imports (see the module docstring for what counts)."""
    found = []
    for node, type_only in _nodes(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: None if is_package else -1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]
        for target in dict.fromkeys(targets):
            if target == "inferwatch" or target.startswith("inferwatch."):
                found.append(Import(module, target, getattr(node, "lineno", 0), type_only))
    return found


@functools.cache
def all_imports() -> tuple[Import, ...]:
    """Every import of the package, type-only ones included."""
    modules = module_names()
    known = set(modules)
    found: list[Import] = []
    for module, path in modules.items():
        source = path.read_text(encoding="utf-8")
        found += imports_of(module, source, path.name == "__init__.py", known)
    return tuple(found)


def package_imports() -> list[Import]:
    """The imports the rules apply to: those that run."""
    return [imp for imp in all_imports() if not imp.type_only]


def describe(imp: Import, rule: str, why: str) -> str:
    path = module_names()[imp.importer].relative_to(PACKAGE.parents[1])
    return f"{imp.importer} imports {imp.imported} ({path}:{imp.line}): rule '{rule}': {why}"


def test_the_walker_finds_the_imports_of_the_tree() -> None:
    """The contract below cannot pass for want of imports: the walker sees a known one."""
    edges = {(i.importer, i.imported) for i in package_imports()}
    assert ("inferwatch.instrument.inference", "inferwatch.export.state") in edges


def test_the_walker_reads_every_form_of_import() -> None:
    source = """
from __future__ import annotations
import importlib
import os
from typing import TYPE_CHECKING
import inferwatch.store
from inferwatch import semconv, not_a_module
from inferwatch.export.state import get_state
from . import sibling
from ..windows import rollups
if TYPE_CHECKING:
    from inferwatch.drift.profile import Profile
else:
    from inferwatch.errors import contained
def later():
    from inferwatch.query.render import table
    return importlib.import_module("inferwatch.query.bubble")
"""
    known = {
        "inferwatch.semconv",
        "inferwatch.export.state",
        "inferwatch.ranking.sibling",
        "inferwatch.windows.rollups",
    }
    found = imports_of("inferwatch.ranking.clicks", source, False, known)
    assert [(i.imported, i.type_only) for i in found] == [
        ("inferwatch.store", False),
        ("inferwatch.semconv", False),
        ("inferwatch", False),  # `not_a_module` is a name of the facade
        ("inferwatch.export.state", False),
        ("inferwatch.ranking.sibling", False),
        ("inferwatch.windows.rollups", False),
        ("inferwatch.drift.profile", True),
        ("inferwatch.errors", False),
        ("inferwatch.query.render", False),
        ("inferwatch.query.bubble", False),
    ]


def test_every_module_belongs_to_a_layer() -> None:
    """A new top-level module or package must be placed in a layer before the rules see it."""
    placed = frozenset().union(*LAYERS.values()) | {FACADE}
    unplaced = sorted({part(m) for m in module_names()} - placed)
    assert not unplaced, f"not in any layer of tests/test_architecture.py: {unplaced}"


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_layer_rule(rule: Rule) -> None:
    violations = [
        describe(imp, rule.name, rule.why)
        for imp in package_imports()
        if imp.source in rule.importers and imp.target in rule.forbidden
    ]
    assert not violations, "\n".join(violations)


def test_features_import_each_other_only_through_declared_edges() -> None:
    rule = "features import each other only through FEATURE_EDGES"
    violations = [
        describe(imp, rule, f"{imp.source} -> {imp.target} is not a declared edge")
        for imp in package_imports()
        if imp.source in FEATURES
        and imp.target in FEATURES
        and imp.source != imp.target
        and (imp.source, imp.target) not in FEATURE_EDGES
    ]
    assert not violations, "\n".join(violations)


def test_every_declared_edge_is_still_used() -> None:
    """An edge nothing needs any more is removed, so the table stays the truth about the tree.

    Type-only imports count as uses here: the dependency on the other feature's concept is real
    even when it is not executed (validation's Schema names drift's Profile only in types)."""
    used = {(imp.source, imp.target) for imp in all_imports()}
    stale = sorted(set(FEATURE_EDGES) - used)
    assert not stale, f"FEATURE_EDGES lists edges no import uses: {stale}"
