"""The layers of DESIGN.md, checked on the source: who may import whom.

Why a test: the rules (the node side holds no Oxide credentials and so never loads the Oxide
client or the controller; generated stubs stay behind the servicers and the server; no import
cycles) slip one innocent import at a time, and an import inside a function slips past a reader
as easily as one at the top. So every ``import`` statement in ``src/`` is read with ``ast``,
wherever it sits, except under ``if TYPE_CHECKING:`` (never executed). A last test runs the real
``serve --mode node`` process and reads, from Python's own import log, what it loaded.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_process import wait_until

SRC = Path(__file__).resolve().parents[1] / "src"

#: The node side: what runs on every node, with no Oxide credentials.
NODE_ROOTS = (
    "oxide_csi.node",
    "oxide_csi.servicers.node",
    "oxide_csi.servicers.access",
    "oxide_csi.poweroff",  # the heartbeat and power-off handler (graceful power-off)
)
#: What the node side must never load.
NODE_FORBIDDEN = ("oxide_csi.controller", "oxide_csi.oxide")
#: Who may import the generated stubs (tests may too; they are not under ``src/``).
STUB_PACKAGE = "oxide_csi.csi_v1"
STUB_USERS = ("oxide_csi.servicers", "oxide_csi.server", STUB_PACKAGE)
#: Named exceptions to STUB_USERS, each with its reason: a CSI client tool speaks CSI by nature.
STUB_EXCEPTIONS: dict[str, str] = {
    "oxide_csi.tools": "a CSI client tool for operators: it speaks CSI to a plugin, so it uses "
    "the stubs as a client, as the tests do",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions and classes too, skipping ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def imports_of(module: str) -> set[str]:
    """The modules ``module`` imports: ``from a import b`` counts as ``a.b`` when that is a
    module, else as ``a``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = _absolute(module, node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if sub in MODULES else base)
    return found


GRAPH = {name: {m for m in imports_of(name) if m in MODULES} for name in MODULES}


def _within(name: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _cycle_through(start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for target in GRAPH[name]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def _closure(roots: list[str]) -> dict[str, str]:
    """Every module reachable from ``roots``, each with the module that first imported it."""
    via = {root: root for root in roots}
    todo = list(roots)
    while todo:
        name = todo.pop()
        for target in GRAPH[name]:
            if target not in via:
                via[target] = name
                todo.append(target)
    return via


def test_the_walk_sees_imports_inside_functions() -> None:
    """Guards the walker itself: app.py builds the controller inside functions only."""
    assert "oxide_csi.controller.volumes" in GRAPH["oxide_csi.app"]
    assert "oxide_csi.oxide" in GRAPH["oxide_csi.app"]
    assert "oxide_csi.servicers.node" in GRAPH["oxide_csi.app"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_itself_through_others(module: str) -> None:
    cycle = _cycle_through(module)
    assert cycle is None, " -> ".join(cycle or [])


def test_node_side_imports_nothing_of_controller_or_oxide() -> None:
    roots = [m for m in MODULES if _within(m, NODE_ROOTS)]
    assert "oxide_csi.node.stage" in roots and "oxide_csi.servicers.node" in roots
    assert "oxide_csi.poweroff.kube" in roots
    bad = {m: via for m, via in _closure(roots).items() if _within(m, NODE_FORBIDDEN)}
    assert not bad, f"node side loads {sorted(bad)} (imported by {bad})"


def test_generated_stubs_only_behind_servicers_and_server() -> None:
    allowed = [*STUB_USERS, *STUB_EXCEPTIONS]
    users = {m for m, targets in GRAPH.items() if any(_within(t, [STUB_PACKAGE]) for t in targets)}
    assert {"oxide_csi.servicers.node", "oxide_csi.server.redaction"} <= users
    assert sorted(m for m in users if not _within(m, allowed)) == []


def _loaded_modules(log: str) -> set[str]:
    """Module names from ``PYTHONPROFILEIMPORTTIME``'s log: ``import time: a | b |   name``."""
    return {
        line.rpartition("|")[2].strip()
        for line in log.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_node_process_never_loads_the_oxide_client(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    """The real ``serve --mode node`` process, after serving calls: Python's import log names
    every module it loaded, at start-up or later inside a function."""
    from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

    kubelet = short_tmp / "kubelet"
    kubelet.mkdir()
    endpoint = f"unix://{short_tmp}/layers.sock"
    args = ["serve", "--mode", "node", "--node-id", "n1", "--endpoint", endpoint]
    env = {**plugin_env, "PYTHONPROFILEIMPORTTIME": "1"}
    plugin = plugin_factory([*args, "--kubelet-dir", str(kubelet)], env, short_tmp)
    channel = plugin.wait_ready(endpoint)
    node = csi_pb2_grpc.NodeStub(channel)
    assert node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10).node_id == "n1"
    node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest(), timeout=10)
    channel.close()
    plugin.terminate()
    assert plugin.wait() == 0
    loaded = _loaded_modules(plugin.output())
    assert {"oxide_csi.servicers.node", "oxide_csi.node.stage"} <= loaded, "import log is read"
    assert sorted(m for m in loaded if _within(m, NODE_FORBIDDEN)) == []
    # Neither OpenSSL binding: ``_ssl`` (blocked by the ssl gate) nor ``_hashlib`` (which
    # ``secrets``/``hmac`` would pull in through the CLI's imports), each a few MB on every node.
    assert sorted(loaded & {"_ssl", "_hashlib"}) == []


def test_a_node_answering_power_off_requests_loads_no_oxide_client(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    """With graceful power-off on (file channel), the node keeps its heartbeat: still nothing
    of the controller or the Oxide client, and no OpenSSL."""
    kubelet = short_tmp / "kubelet"
    kubelet.mkdir()
    boot = short_tmp / "boot_id"
    boot.write_text("3b7c2a4e-0000-4000-8000-000000000001\n")
    node_id = "9f1c2b3a-0000-4000-8000-00000000000a"
    endpoint = f"unix://{short_tmp}/layers.sock"
    args = ["serve", "--mode", "node", "--node-id", node_id, "--endpoint", endpoint]
    args += ["--kubelet-dir", str(kubelet), "--graceful-power-off", "--state-dir", str(short_tmp)]
    env = {**plugin_env, "PYTHONPROFILEIMPORTTIME": "1", "OXIDE_CSI_BOOT_ID_FILE": str(boot)}
    plugin = plugin_factory(args, env, short_tmp)
    plugin.wait_ready(endpoint).close()
    beat = short_tmp / "poweroff" / "heartbeats" / f"{node_id}.json"
    wait_until(beat.exists, "the heartbeat")
    plugin.terminate()
    assert plugin.wait() == 0
    loaded = _loaded_modules(plugin.output())
    assert {"oxide_csi.poweroff.agent", "oxide_csi.poweroff.files"} <= loaded
    assert sorted(m for m in loaded if _within(m, NODE_FORBIDDEN)) == []
    assert sorted(loaded & {"_ssl", "_hashlib"}) == []
