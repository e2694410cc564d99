"""No import circle between resetrl's files: a lower stage never imports a higher one.

Read from the source (ast), not by importing: every import of a resetrl module in a file, at any
depth (an import deferred into a function still ties the two files together), except those under
`if TYPE_CHECKING:`. A circle is a strongly connected set of two or more files."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "resetrl"

# Circles allowed: a base class and its subclass in one package, the base's module choosing one.
ALLOWED = [{"resetrl.cluster.distributed", "resetrl.cluster.fsdp"}]  # LearnerGroup, ShardedLearnerGroup


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a file, but those under `if TYPE_CHECKING:` (never run)."""
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending += node.orelse
        else:
            pending += list(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from resetrl.x import y`: y may be a module of its own, else a name in resetrl.x.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            for target in targets:
                while target and target not in paths:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected sets of two or more modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_files():
    found = [component for component in circles(import_graph()) if component not in ALLOWED]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_check_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [{"a", "b", "c"}]
    graph = import_graph()
    assert "resetrl.config" in graph["resetrl.trainer"]  # module-level imports are read
    assert "resetrl.cluster.fsdp" in graph["resetrl.cluster.distributed"]  # and deferred ones


def test_the_config_loads_its_package_sections_without_their_packages():
    """resetrl/config.py imports the `ics:` and `cpi:` sections from their packages; those packages'
    __init__ files must not pull in the ICS engine (tasks, scorer) or the CPI lab (numpy) with them."""
    import subprocess
    import sys

    code = ("import sys, resetrl.config; "
            "print(sorted(m for m in sys.modules if m.startswith(('resetrl.ics.', 'resetrl.cpi.', 'resetrl.tasks'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=PACKAGE.parent)
    assert done.stdout.strip() == "['resetrl.cpi.config', 'resetrl.ics.config']"
