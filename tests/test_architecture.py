"""The import graph keeps ARCHITECTURE.md's layers: every module imports only its own package
or packages of a lower layer, so there is no package cycle and nothing low reaches up.

Read statically (every ``import`` in every module, inside functions and ``TYPE_CHECKING``
blocks too: a type-only import is still a dependency). A package is the longest prefix in
``LAYERS``; the eth subpackages have layers of their own so that an eth message's path
runs one way: the wire layer (``eth.protocols``) never imports the handler, fetchers or
downloader that consume what it decodes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ethnode

ROOT = Path(ethnode.__file__).resolve().parent

# (package, layer): lower layers never import higher ones.
LAYERS: dict[str, float] = {
    # leaves: no ethnode imports but each other's errors
    "ethnode.errors": 0, "ethnode.version": 0, "ethnode.event": 0, "ethnode.strictjson": 0,
    "ethnode.recursionlimit": 0, "ethnode.privatefs": 0, "ethnode._native": 0, "ethnode.logctx": 0,
    # foundation
    "ethnode.rlp": 1, "ethnode.crypto": 1, "ethnode.trie": 2,
    "ethnode.metrics": 3,  # the registry and meters, usable from p2p
    "ethnode.rpc": 4,  # the JSON-RPC framework: dispatcher, HTTP endpoint, JWT
    "ethnode.p2p": 4,
    "ethnode.core": 5,  # chain, state, execution, pool, chain events
    "ethnode.node": 5,  # the container: config, datadir, lifecycles
    "ethnode.consensus": 6,
    "ethnode.miner": 7,
    "ethnode.eth.protocols": 8.0,  # the eth wire layer: messages, peer, request tracker, serving
    "ethnode.eth.fetcher": 8.1,
    "ethnode.eth.downloader": 8.1,
    "ethnode.eth": 8.2,  # handler, peer set, sync, service
    "ethnode.eth.catalyst": 8.3,  # the Engine API, beside the chain it drives
    "ethnode.ethapi": 9,  # the public JSON-RPC namespaces
    "ethnode.monitoring": 10,  # the metrics service, event logger, sync display
    "ethnode.api": 10.5,  # the public Python API: a node from one config, public events, sub-protocols
    "ethnode.record": 10.7,  # ``record``: what the node sees, to SQLite or Parquet (built on ethnode.api)
    "ethnode.commands": 11,
    "ethnode.cli": 11,
    "ethnode.__main__": 12,
}
# The package root is the public facade (it imports the hot paths to report backends);
# only the command line may import it.
ROOT_IMPORTERS = ("ethnode.cli", "ethnode.commands", "ethnode.__main__")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package(module: str) -> str | None:
    best = None
    for name in LAYERS:
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "ethnode":
                found += [(f"ethnode.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name == "ethnode" or name.startswith("ethnode.")]


def _violations() -> list[str]:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        if module == "ethnode":
            continue
        own = _package(module)
        if own is None:
            problems.append(f"{module}: in no layer (add its package to LAYERS and ARCHITECTURE.md)")
            continue
        for target, line in _imports(path):
            if target == "ethnode":
                if not module.startswith(ROOT_IMPORTERS):
                    problems.append(f"{module}:{line} imports the package root")
                continue
            theirs = _package(target)
            if theirs is None:
                source = ROOT / target.split(".", 1)[1].replace(".", "/")
                if not target.startswith("ethnode._rust") and source.exists():
                    problems.append(f"{module}:{line} imports {target}, in no layer")
                continue
            if theirs == own or own.startswith(theirs + ".") and LAYERS[theirs] <= LAYERS[own]:
                continue
            if LAYERS[theirs] >= LAYERS[own]:
                problems.append(f"{module}:{line} ({own}, layer {LAYERS[own]}) imports {target} "
                                f"({theirs}, layer {LAYERS[theirs]})")
    return problems


def test_layers_only_import_downwards() -> None:
    problems = _violations()
    assert not problems, "\n".join(problems)


def test_the_layer_table_covers_every_package() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p.is_dir() and (p / "__init__.py").exists())}
    packages |= {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    missing = sorted(f"ethnode.{p}" for p in packages if _package(f"ethnode.{p}") is None)
    assert not missing, f"packages in no layer: {missing}"
