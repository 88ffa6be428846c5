"""The dependency rules of docs/ARCHITECTURE.md, checked on the import statements of the tree.

Every module of electra_tf/, data_prep/, the entry scripts and bench/ is parsed (nothing is
imported), and each import of a project module becomes an edge. The graph must have no cycle,
and every edge must point down the layers below (or stay within one layer).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENTRY_SCRIPTS = ("build_pretraining_dataset", "run_pretraining", "run_finetuning",
                 "export_saved_model")

# Lowest first. A module belongs to the first layer with a prefix that matches its name.
LAYERS = (
    ("foundation", ("electra_tf.cli", "electra_tf.io", "electra_tf.config")),
    ("text and records", ("electra_tf.tokenization", "electra_tf.data")),
    ("model", ("electra_tf.modeling",)),
    ("training machinery", ("electra_tf.training",)),
    ("objective and serving", ("electra_tf.pretraining.masking", "electra_tf.pretraining.sampling",
                               "electra_tf.pretraining.objective", "electra_tf.serving")),
    ("task kinds", ("electra_tf.finetune.",)),
    ("checkpoints", ("electra_tf.checkpoint_io",)),
    ("applications", ("electra_tf.pretraining.app", "electra_tf.pretraining.flags",
                      "electra_tf.pretraining.options", "electra_tf.finetune.options",
                      "electra_tf.finetune.runner", "electra_tf.finetune.flags",
                      "electra_tf.finetune.demo_compare", "electra_tf.export",
                      "electra_tf.convert_checkpoint", "data_prep")),
    ("entry points", ENTRY_SCRIPTS + ("bench",)),
)
# Applications live inside lower packages (pretraining/app.py beside the objective): a module's
# layer is the one of the longest prefix that matches it.


def layer_of(module: str) -> int:
    best, rank = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in (p.rstrip(".") for p in prefixes):
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    if rank is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py")
    return rank


def project_modules() -> dict:
    files = [p for package in ("electra_tf", "data_prep", "bench")
             for p in (ROOT / package).rglob("*.py")]
    files += [ROOT / f"{name}.py" for name in ENTRY_SCRIPTS]
    modules = {}
    for path in files:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: pathlib.Path, known: set) -> set:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from package import module` names the module; `from module import name`, the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            # The longest known module that the target names (a module or a name inside it).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] != "tests":
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_import_graph_has_no_cycle(graph):
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_imports_point_down_the_layers(graph):
    upward = [f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} "
              f"({LAYERS[layer_of(target)][0]})"
              for source, targets in sorted(graph.items()) for target in sorted(targets)
              if not source.startswith("bench") and layer_of(target) > layer_of(source)]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("package, forbidden", [
    # The training machinery is generic: it knows nothing about ELECTRA.
    ("electra_tf.training", ("electra_tf.modeling", "electra_tf.pretraining",
                             "electra_tf.finetune", "electra_tf.checkpoint_io",
                             "electra_tf.tokenization", "electra_tf.config", "electra_tf.data")),
    # Fine-tuning never depends on the SavedModel writer.
    ("electra_tf.finetune", ("electra_tf.export",)),
    # One direction between the packages: the data stage builds on the library.
    ("electra_tf", ("data_prep",)),
])
def test_package_boundaries(graph, package, forbidden):
    crossing = [f"{source} imports {target}" for source, targets in sorted(graph.items())
                if source == package or source.startswith(package + ".")
                for target in sorted(targets) if target.startswith(forbidden)]
    assert not crossing, "\n".join(crossing)


def test_no_private_names_of_keras_or_tensorflow():
    """`keras.src`, `tensorflow.python` and `tf.__internal__` are private; so is a Keras or
    TensorFlow attribute whose name starts with an underscore."""
    offenders = []
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module.startswith(("keras.src", "tensorflow.python"))):
                offenders.append(f"{name}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                offenders += [f"{name}: import {a.name}" for a in node.names
                              if a.name.startswith(("keras.src", "tensorflow.python"))]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in ("tf", "keras", "tensorflow"):
                    offenders.append(f"{name}:{node.lineno}: {root.id}...{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr == "__internal__":
                offenders.append(f"{name}:{node.lineno}: __internal__")
    assert not offenders, "\n".join(offenders)


def _private_names_of_the_libraries() -> set:
    import keras
    import tensorflow as tf
    classes = (keras.optimizers.Optimizer, keras.optimizers.LossScaleOptimizer, keras.Model,
               keras.layers.Layer, keras.Variable, tf.Module, tf.Variable, tf.distribute.Strategy,
               tf.distribute.StrategyExtended, tf.distribute.MultiWorkerMirroredStrategy,
               tf.train.Checkpoint, tf.train.CheckpointManager, tf.data.Dataset)
    return {name for cls in classes for name in dir(cls)
            if name.startswith("_") and not name.startswith("__")}


# Keras 3 gives an optimizer subclass no public way to find a variable's slots inside
# `update_step`; its own optimizers (Adam, Lamb...) use this protected helper for it.
ALLOWED_PROTECTED = {"_get_variable_index"}


def test_no_private_hooks_of_keras_or_tensorflow():
    """No code reads, sets or overrides a private attribute that Keras' or TensorFlow's own
    classes define (an upgrade may rename or bypass it silently)."""
    private = _private_names_of_the_libraries() - ALLOWED_PROTECTED
    offenders = []
    for name, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f"{name}:{node.lineno}: .{node.attr}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name in private:
                offenders.append(f"{name}:{node.lineno}: def {node.name}")
    assert not offenders, "\n".join(offenders)
