"""The shape of the house, drawn from the imports: one walk down, no circles, no back-arrows.

The graph counts *every* import statement of ``src/trialwatch`` — at module level, inside a
function, under ``TYPE_CHECKING`` — because an import hidden in a function is still an arrow: a
circle drawn there is still a circle. Each module sits on one floor (``LAYERS``) and may import
only from its own floor or the floors below it. A module added to the package must be given a
floor here, which is the point: where it sits is a decision, not an accident.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "trialwatch"

# Lowest first. A module matches a floor by its dotted name below ``trialwatch`` (``""`` is the
# package itself); a name ending in ``.*`` matches a whole subpackage.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "pure core",
        frozenset(
            {
                "",
                "exceptions",
                "vocabulary",
                "models",
                "records",
                "eligibility",
                "normalize",
                "diff",
                "rawcodec",
                "failpoints",
                "cron",
                "importtext",
                "discovery",
                "logs",
                "prepare",
                "decision",
                "overview",
                "redact",
                "tomlpos",
                "ids",
            }
        ),
    ),
    ("settings", frozenset({"config", "routing", "health"})),
    (
        "presentation",
        frozenset(
            {"history", "timeline", "report", "pages", "period", "messages", "feeds", "export"}
        ),
    ),
    (
        "edges",
        frozenset({"storage", "storage.*", "ctgov", "registry_history", "notify", "allocator"}),
    ),
    ("use cases", frozenset({"sync", "backfill", "workers", "outbox"})),
    ("app", frozenset({"app", "daemon", "web", "statusview"})),
    ("cli", frozenset({"cli", "cli.*", "__main__"})),
)

PRESENTATION = frozenset(
    {"history", "report", "timeline", "pages", "period", "messages", "feeds", "export"}
)
PURE_CORE_FORBIDDEN = ("sqlalchemy", "sqlmodel", "httpx", "smtplib", "jinja2", "alembic")

# Arrows that are wrong today and are being taken down, each with the step that removes it.
# An entry that no longer matches an arrow fails the test: the list only ever shrinks.
KNOWN_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()
KNOWN_BACK_ARROWS: frozenset[tuple[str, str]] = frozenset()
KNOWN_STORAGE_PRESENTATION: frozenset[tuple[str, str]] = frozenset()
KNOWN_CLI_STORAGE: frozenset[tuple[str, str]] = frozenset()
KNOWN_CLI_STORE_TEXT = False  # ``store.`` appears nowhere in src/trialwatch/cli/


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for p in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in p.relative_to(PACKAGE).parts
    }


def _imported(path: Path, name: str) -> set[str]:
    """Every absolute module name that any import statement of ``path`` names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ("trialwatch." + package).rstrip(".").split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # ``from trialwatch import history`` imports the module trialwatch.history.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for full in _imported(path, name):
            if full == "trialwatch":
                targets.add("")
            elif full.startswith("trialwatch."):
                short = full.removeprefix("trialwatch.")
                if short in modules:
                    targets.add(short)
        targets.discard(name)
        graph[name] = targets
    return graph


def _external(name: str) -> set[str]:
    """The top-level names of what ``name`` imports from outside the package."""
    path = _modules()[name]
    return {m.split(".")[0] for m in _imported(path, name) if not m.startswith("trialwatch")}


def _floor(name: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if member == name or (member.endswith(".*") and name.startswith(member[:-1])):
                return index
    raise AssertionError(f"trialwatch.{name} has no floor in LAYERS: give it one")


def _cycle_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Arrows that lie on a circle (both ends in one strongly connected component)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    component: dict[str, int] = {}
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component[member] = index[node]
                if member == node:
                    break

    for node in graph:
        if node not in index:
            visit(node)
    return {(a, b) for a, targets in graph.items() for b in targets if component[a] == component[b]}


def test_the_graph_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from trialwatch.storage import Store\n"
        "def f():\n    from trialwatch.timeline import x\n    import trialwatch.diff\n"
        "from . import vocabulary\n",
        encoding="utf-8",
    )
    found = _imported(source, "sample")
    assert {"trialwatch.storage", "trialwatch.timeline", "trialwatch.diff"} <= found
    assert "trialwatch.vocabulary" in found


def test_every_module_has_a_floor() -> None:
    for name in _modules():
        _floor(name)


def test_no_circles() -> None:
    found = _cycle_edges(_graph())
    assert found == KNOWN_CYCLE_EDGES


def test_no_back_arrows() -> None:
    graph = _graph()
    back = {(a, b) for a, targets in graph.items() for b in targets if _floor(b) > _floor(a)}
    assert back == KNOWN_BACK_ARROWS


def test_storage_imports_no_presentation() -> None:
    graph = _graph()
    found = {
        (a, b)
        for a, targets in graph.items()
        if a == "storage" or a.startswith("storage.")
        for b in targets
        if b in PRESENTATION
    }
    assert found == KNOWN_STORAGE_PRESENTATION


def test_the_pure_core_imports_no_database_network_mail_or_templates() -> None:
    core = [name for name in _modules() if _floor(name) == 0]
    assert {"models", "normalize", "diff", "vocabulary"} <= set(core)
    found = {name: _external(name) & set(PURE_CORE_FORBIDDEN) for name in core}
    assert not {name: libs for name, libs in found.items() if libs}


def test_the_cli_imports_no_storage() -> None:
    graph = _graph()
    found = {
        (a, b)
        for a, targets in graph.items()
        if a == "cli" or a.startswith("cli.")
        for b in targets
        if b == "storage" or b.startswith("storage.")
    }
    assert found == KNOWN_CLI_STORAGE


def test_the_cli_names_no_store() -> None:
    """The CLI reaches the database through ``App`` only: ``store.`` appears nowhere in it,
    not even in a comment or a string."""
    hits = [
        f"{path.name}:{number}"
        for path in sorted((PACKAGE / "cli").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"store\.", line)
    ]
    assert bool(hits) == KNOWN_CLI_STORE_TEXT, hits


def test_only_storage_imports_the_database_libraries() -> None:
    """SQLAlchemy, SQLModel and Alembic live in ``storage`` (its locks included)."""
    found = {
        name: _external(name) & {"sqlalchemy", "sqlmodel", "alembic"}
        for name in _modules()
        if not (name == "storage" or name.startswith("storage."))
    }
    assert not {name: libs for name, libs in found.items() if libs}


def _drawn_tree(doc: str) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """The exception tree drawn in a docstring: each class -> (its parent, its other bases)."""
    drawn: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    parents: list[str] = []
    for line in doc.splitlines():
        match = re.match(r"^    ([│├└─ ]*)(\w+Error)(?: \(([\w, ]+)\))?", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4
        name = match.group(2)
        del parents[depth:]
        others = tuple(b.strip() for b in match.group(3).split(",")) if match.group(3) else ()
        drawn[name] = (parents[-1] if parents else None, others)
        parents.append(name)
    return drawn


def test_the_exception_tree_is_drawn_as_it_is() -> None:
    import inspect

    from trialwatch import exceptions

    assert exceptions.__doc__ is not None
    drawn = _drawn_tree(exceptions.__doc__)
    actual: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for name, cls in vars(exceptions).items():
        if inspect.isclass(cls) and issubclass(cls, exceptions.TrialwatchError):
            bases = [b.__name__ for b in cls.__bases__]
            if cls is exceptions.TrialwatchError:
                actual[name] = (None, ())
            else:
                actual[name] = (bases[0], tuple(bases[1:]))
    assert drawn == actual
