"""The shape of the code: the layers of ``producer/`` and ``api/``, read from
the imports (every import, those inside functions and ``TYPE_CHECKING``
blocks included), and the exported names of ``producer``.

A new module must be given a layer below; a module may import its own layer
and the ones beneath it, never one above. docs/architecture.md draws the same
map.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. Within a layer imports may go either way, as long as they
# form no cycle.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"errors", "settings", "ids", "types"}),
    (
        "pure rules",
        {
            "signing",
            "retry",
            "routing",
            "filters",
            "health",
            "payloads",
            "validation",
            "sealing",
            "credentials",
            "destinations",
            "hooks",
            "problem_log",
            "tracing",
        },
    ),
    (
        "storage and transport",
        {
            "models",
            "db",
            "store",
            "doorbell",
            "group_commit",
            "queue",
            "egress",
            "transport",
            "transport_aiohttp",
            "migrations.__init__",
            "migrations.env",
        },
    ),
    ("context", {"context"}),
    (
        "resources",
        {
            "event_types",
            "endpoints",
            "sending",
            "delivery_log",
            "replay",
            "jobs",
            "stats",
            "api_keys",
        },
    ),
    ("worker side", {"oauth2", "delivery", "outcomes", "maintenance", "ping", "worker"}),
    ("facade", {"producer"}),
    (
        "entry points",
        {
            "__init__",
            "metrics",
            "otel_metrics",
            "listen",
            "logs",
            "service",
            "cli.__init__",
            "cli.__main__",
            "cli.common",
            "cli.views",
            "cli.database",
            "cli.deliveries",
            "cli.keys",
            "cli.endpoints",
            "cli.jobs",
            "cli.messages",
            "cli.secrets",
            "cli.service",
        },
    ),
]
# The command line and the service start the API; nothing else in producer/
# may know it exists.
MAY_IMPORT_API = {"producer.cli.service", "producer.service"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    modules = {}
    for package in ("producer", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "versions" in path.parts:  # migration scripts: alembic loads them
                continue
            modules[_module_name(path)] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that an imported dotted name lives in, if any."""
    while name:
        if name in MODULES:
            return name
        if f"{name}.__init__" in MODULES:
            return f"{name}.__init__"
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    package = module.rpartition(".")[0] if not module.endswith("__init__") else module[:-9]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from producer import signing`` imports a module; ``from
            # producer import Producer`` imports from the package itself.
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _layer(module: str) -> int:
    package, _, rest = module.partition(".")
    if package == "api":
        return len(LAYERS)
    for index, (_, members) in enumerate(LAYERS):
        if rest in members:
            return index
    raise AssertionError(
        f"{module} has no layer: add it to LAYERS in {Path(__file__).name} "
        "and to docs/architecture.md"
    )


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module):
    upward = [
        target
        for target in GRAPH[module]
        if _layer(target) > _layer(module)
        and not (module in MAY_IMPORT_API and target.startswith("api"))
    ]
    assert not upward, f"{module} imports {upward} from a layer above its own"


def test_the_imports_form_no_cycle():
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_walk_sees_imports_inside_functions():
    # The cycle check is only worth something if a deferred import counts.
    assert "api.__init__" in GRAPH["producer.service"] or any(
        target.startswith("api.") for target in GRAPH["producer.service"]
    )


def test_the_library_does_not_import_the_api():
    for module, targets in GRAPH.items():
        if module.startswith("producer.") and module not in MAY_IMPORT_API:
            assert not [t for t in targets if t.startswith("api")], module


EXPORTS = [
    "ApiKey",
    "Attempt",
    "ConflictError",
    "ConversionError",
    "Delivery",
    "DeliveryStatus",
    "Endpoint",
    "EndpointSecret",
    "EndpointStats",
    "EndpointStatus",
    "EventType",
    "HourlyCount",
    "IdempotencyConflictError",
    "InvalidStateError",
    "Message",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PreviousSecret",
    "Producer",
    "SchemaValidationError",
    "Settings",
    "SignatureVerificationError",
    "TestResult",
    "ValidationError",
    "WebhooksError",
    "__version__",
]


def test_the_exported_names_are_pinned():
    import producer

    assert sorted(producer.__all__) == sorted(EXPORTS)
    for name in EXPORTS:
        assert hasattr(producer, name), name


def test_a_process_that_only_sends_never_loads_the_migrations_tooling(postgres_url):
    """Alembic loads with a migration or a schema check, not with the library:
    an application that only sends events does not pay for it."""
    code = (
        "import sys\n"
        "from producer import Producer\n"
        f"p = Producer({postgres_url!r}, auto_migrate=False)\n"
        "p.send('invoice.paid', {'n': 1})\n"
        "assert p.list_messages(limit=1).data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
        "p.check_schema_version()\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "True"]
