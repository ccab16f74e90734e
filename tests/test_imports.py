"""The import graph of batcher/, read from the source (imports inside functions and under TYPE_CHECKING count):
no cycle between modules, and no private name (`_x`) imported from another module, by batcher, tests or bench.

The layers themselves are import-linter's contracts in pyproject.toml (`make lint`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "batcher"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, package: str | None = None) -> Iterator[tuple[str, str, int]]:
    """(module imported from, name imported or "", line) of every import in the file, at any depth; package: the
    one relative imports start from (default: the file's own, inside this checkout)."""
    if package is None:
        me = module_name(path)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name, node.lineno


def graph() -> dict[str, set[str]]:
    """batcher's modules and the batcher modules each imports (`from package import module` names the module)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for source, imported, _ in imports(path):
            target = f"{source}.{imported}" if f"{source}.{imported}" in MODULES else source
            if target in MODULES and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_modules_of_batcher_import_each_other_without_a_cycle() -> None:
    assert cycles(graph()) == []


def test_an_import_inside_a_function_is_read_and_a_cycle_is_found(tmp_path: Path) -> None:
    late = tmp_path / "late.py"
    late.write_text("def later() -> None:\n    from batcher.models import _hidden\n    from . import sibling\n")
    assert list(imports(late, package="batcher.plan")) == [
        ("batcher.models", "_hidden", 2),
        ("batcher.plan", "sibling", 3),
    ]
    assert private_imports([late]) == [f"{late}:2: _hidden from batcher.models"]
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert "batcher.models" in graph()["batcher.settings"]  # the real graph is read


def private_imports(paths: list[Path]) -> list[str]:
    """Each private name (`_x`) imported from a batcher module, as path:line: name from module."""
    found = []
    for path in paths:
        inside = path.is_relative_to(ROOT)
        for source, imported, line in imports(path, package=None if inside else "batcher"):
            if source.split(".")[0] == "batcher" and imported.startswith("_") and not imported.startswith("__"):
                found.append(f"{path}:{line}: {imported} from {source}")
    return found


def test_no_private_name_is_imported_from_another_module() -> None:
    paths = [path for folder in ("batcher", "tests", "bench") for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(paths) > 50
    assert private_imports(paths) == []


def test_one_file_lock_flock_is_called_in_support_files_only() -> None:
    importers = sorted(
        name for name, path in MODULES.items() if any(source == "fcntl" for source, _, _ in imports(path))
    )
    assert importers == ["batcher.support.files"]


def test_one_session_owner_builds_every_client_ledger_and_credentials() -> None:
    """run, plan, undo, verify, export and run --verify all get them from http/session.py's Session."""
    owners: dict[str, set[str]] = {"ApiClient": set(), "QuotaLedger": set(), "load_credentials": set()}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in owners:
                owners[node.func.id].add(name)
    assert owners == {key: {"batcher.http.session"} for key in owners}


def loaded_after(argv: list[str], tmp_path: Path) -> list[str]:
    """The heavy packages a fresh `batcher ARGV` process has imported when it ends."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['batcher', *{argv!r}]\n"
        "try:\n    runpy.run_module('batcher', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(name for name in ('aiohttp', 'asyncio', 'pandas', 'pyarrow') if name in sys.modules))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BATCHER_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return list(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_help_starts_without_asyncio_aiohttp_pandas_or_pyarrow(tmp_path: Path) -> None:
    assert loaded_after(["--help"], tmp_path) == []
    assert loaded_after(["run", "--help"], tmp_path) == []


def test_plan_loads_no_aiohttp(tmp_path: Path) -> None:
    source = ROOT / "sample_inputs" / "cancellations.csv"
    loaded = loaded_after(["plan", str(source), "--status", "CANCELED"], tmp_path)
    assert "pyarrow" in loaded  # the plan was made (the probe sees what a command loads)
    assert "aiohttp" not in loaded


def test_the_state_folder_is_found_in_http_session_only() -> None:
    """--state-dir, the environment's default and the profile's folder: one expression, in http/session.py."""
    callers = sorted(
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("default_state_dir", "profile_folder")
        and name not in ("batcher.http.profiles", "batcher.flows.login")  # a login names its profile's folder
    )
    assert set(callers) == {"batcher.http.session"}


def test_no_module_is_over_400_lines_and_few_sit_directly_in_batcher() -> None:
    """A module past about 400 lines hides a second job; the folders, not the top, hold the code."""
    long = {name: lines for name, path in MODULES.items() if (lines := len(path.read_text().splitlines())) > 400}
    assert long == {}
    top = [path.name for path in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top
