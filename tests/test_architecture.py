"""docs/architecture.md's promise, checked: every import inside the package, module-level or inside a
function, goes to a module of the same layer or a lower one, and no chain of imports comes back
to where it started."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_anime_gan"

# Top to bottom, as docs/architecture.md draws them. A subpackage is one unit: its modules import
# each other freely (without cycles); anything it imports from outside must sit lower.
LAYERS = [
    ("cli", "__init__", "__main__"),
    ("training", "evaluation", "export", "serving_config", "explore", "edit", "studio"),
    ("loading", "nvidia_runs"),
    ("config", "callbacks"),
    ("checkpoints", "metrics", "data", "gans", "nvidia", "rest_client"),
    ("precision",),
    ("sampling", "atomic", "locks", "_tf_logs", "onednn", "recipes"),
    ("errors",),
]
LAYER = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every keras_anime_gan module `path` imports, anywhere in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("keras_anime_gan"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("keras_anime_gan"):
                continue
            for alias in node.names:  # `from . import x` may name a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return {name for name in found if name != module}


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    assert sorted({_unit(module) for module in _graph()} - set(LAYER)) == []


def test_layers_only_call_downwards():
    upward = [f"{module} imports {target}" for module, targets in _graph().items() for target in targets
              if _unit(target) != _unit(module) and LAYER[_unit(target)] < LAYER[_unit(module)]]
    assert upward == []


def test_no_import_cycle():
    graph = _graph()
    state, cycles = {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_check_sees_function_level_imports(tmp_path):
    """The checker must find an import hidden in a function, as an old export <-> gans cycle was."""
    source = PACKAGE / "gans" / "loop.py"
    assert "keras_anime_gan.precision" in _imports(source)  # float32_view, imported inside generate
    hidden = PACKAGE / "loading.py"
    assert "keras_anime_gan.checkpoints" in _imports(hidden)  # imported inside generator_from_checkpoint
