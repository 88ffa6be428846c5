"""Reads and writes the original ELECTRA TF1 checkpoint layout (google-research/electra).

Implements docs/RECIPE.md "Checkpoint variable names of the released TF1 checkpoints": the name and
shape table of both towers (`electra/`, `generator/`) and both pre-training heads, the inference of
the model sizes from those shapes (so the released Small++ with its full-size generator loads
without flags), the import into this project's Keras models and the export back to a real
name-based TF1 checkpoint that the reference code and the ecosystem's converters read.

This project's layers are named so that every `variable.path` ENDS WITH its TF1 name; the mapping
between the two layouts is therefore "find the TF1 name at the end of the path", nothing else.
`global_step` and the Adam slots (`<var>/adam_m`, `<var>/adam_v`) are never imported: continued
pre-training starts from the weights with fresh optimizer state (the reference fails there).
"""

import dataclasses
import re
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from electra_tf.io import first_line

TOWERS = ("electra", "generator")
GENERATOR_HEAD = "generator_predictions"
DISCRIMINATOR_HEAD = "discriminator_predictions"
WORD_EMBEDDINGS = "electra/embeddings/word_embeddings"

_DENSE = r"(?:kernel|bias)"
_NORM = r"LayerNorm/(?:gamma|beta)"
_LAYER = (r"encoder/layer_\d+/(?:"
          rf"attention/self/(?:query|key|value)/{_DENSE}|attention/output/dense/{_DENSE}|"
          rf"attention/output/{_NORM}|intermediate/dense/{_DENSE}|output/dense/{_DENSE}|"
          rf"output/{_NORM})")
_EMBEDDINGS = rf"embeddings/(?:word_embeddings|position_embeddings|token_type_embeddings|{_NORM})"
# The grammar of every model variable name in the reference checkpoints; anything else in a
# checkpoint (global_step, adam_m/adam_v slots, a task head) is not part of the pre-trained model.
TF1_NAME = re.compile(
    rf"(?:electra/{_EMBEDDINGS}|(?:electra|generator)/(?:embeddings_project/{_DENSE}|{_LAYER})"
    rf"|{GENERATOR_HEAD}/(?:dense/{_DENSE}|{_NORM}|output_bias)"
    rf"|{DISCRIMINATOR_HEAD}/(?:dense|dense_1)/{_DENSE})")
_LAYER_INDEX = re.compile(r"^(electra|generator)/encoder/layer_(\d+)/")

Shapes = dict[str, tuple[int, ...]]


def _dense(prefix: str, n_in: int, n_out: int) -> Shapes:
    return {f"{prefix}/kernel": (n_in, n_out), f"{prefix}/bias": (n_out,)}


def _norm(prefix: str, width: int) -> Shapes:
    return {f"{prefix}/LayerNorm/gamma": (width,), f"{prefix}/LayerNorm/beta": (width,)}


def _tower_shapes(scope: str, config: ModelConfig, embedding_size: int) -> Shapes:
    """One transformer tower (embeddings excluded: the towers share the discriminator's)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    shapes: Shapes = {}
    if embedding_size != hidden:
        shapes.update(_dense(f"{scope}/embeddings_project", embedding_size, hidden))
    for i in range(config.num_hidden_layers):
        layer = f"{scope}/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            shapes.update(_dense(f"{layer}/attention/self/{part}", hidden, hidden))
        shapes.update(_dense(f"{layer}/attention/output/dense", hidden, hidden))
        shapes.update(_norm(f"{layer}/attention/output", hidden))
        shapes.update(_dense(f"{layer}/intermediate/dense", hidden, inner))
        shapes.update(_dense(f"{layer}/output/dense", inner, hidden))
        shapes.update(_norm(f"{layer}/output", hidden))
    return shapes


def tf1_variable_shapes(config: ModelConfig) -> Shapes:
    """Every variable of a pre-training checkpoint of `config`, by TF1 name, with its shape."""
    emb, hidden = config.embedding_size, config.hidden_size
    gen = config.generator()
    shapes: Shapes = {
        WORD_EMBEDDINGS: (config.vocab_size, emb),
        "electra/embeddings/position_embeddings": (config.max_position_embeddings, emb),
        "electra/embeddings/token_type_embeddings": (config.type_vocab_size, emb),
    }
    shapes.update(_norm("electra/embeddings", emb))
    shapes.update(_tower_shapes("electra", config, emb))
    shapes.update(_tower_shapes("generator", gen, emb))
    shapes.update(_dense(f"{GENERATOR_HEAD}/dense", gen.hidden_size, emb))
    shapes.update(_norm(GENERATOR_HEAD, emb))
    shapes[f"{GENERATOR_HEAD}/output_bias"] = (config.vocab_size,)
    shapes.update(_dense(f"{DISCRIMINATOR_HEAD}/dense", hidden, hidden))
    shapes.update(_dense(f"{DISCRIMINATOR_HEAD}/dense_1", hidden, 1))
    return shapes


def tf1_name(path: str) -> str | None:
    """The TF1 name at the end of a Keras variable path, or None for a non-ELECTRA variable.

    The longest suffix (on "/" boundaries) that is a valid TF1 name wins, so an outer model scope
    such as "electra_pretrainer/" or a task model's name never leaks into the result.
    """
    parts = path.split(":")[0].split("/")
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if TF1_NAME.fullmatch(candidate):
            return candidate
    return None


def reader(prefix: str):
    """The checkpoint reader of a checkpoint prefix (io.checkpoint_reader: not mistaken for a
    directory on ram://); UserError naming it when it cannot be read."""
    try:
        return io.checkpoint_reader(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"{prefix}: not a readable checkpoint ({first_line(e)})") from None


def checkpoint_shapes(prefix: str) -> Shapes:
    """The ELECTRA model variables of a checkpoint with their shapes (slots and step left out)."""
    variables = reader(prefix).get_variable_to_shape_map()
    return {name: tuple(shape) for name, shape in variables.items() if TF1_NAME.fullmatch(name)}


def is_tf1_checkpoint(prefix: str) -> bool:
    """True for a name-based checkpoint in the reference layout (not an object-based one)."""
    return WORD_EMBEDDINGS in checkpoint_shapes(prefix)


def _layer_count(shapes: Mapping[str, tuple], scope: str) -> int:
    indices = {int(m.group(2)) for m in map(_LAYER_INDEX.match, shapes)
               if m and m.group(1) == scope}
    return max(indices) + 1 if indices else 0


def infer_config(shapes: Mapping[str, tuple], base: ModelConfig | None = None) -> ModelConfig:
    """The ModelConfig whose variables have these shapes.

    Sizes come from the shapes; what shapes cannot tell (attention heads, dropout) comes
    from `base` (default: the recipe's defaults), with heads = hidden / 64 as in every released
    model. Without generator variables (a discriminator-only checkpoint) the generator fields of
    `base` are kept. Raises UserError when the layout is not ELECTRA's.
    """
    heads_known = base is not None and base.hidden_size == _hidden(shapes)
    base = base or ModelConfig()
    required = [WORD_EMBEDDINGS, "electra/embeddings/position_embeddings",
                "electra/embeddings/token_type_embeddings",
                "electra/encoder/layer_0/attention/self/query/kernel",
                "electra/encoder/layer_0/intermediate/dense/kernel"]
    missing = [name for name in required if name not in shapes]
    if missing:
        raise UserError(f"not an ELECTRA checkpoint: missing {', '.join(missing)}")
    vocab, emb = shapes[WORD_EMBEDDINGS]
    hidden = shapes["electra/encoder/layer_0/attention/self/query/kernel"][1]
    sizes = dict(
        vocab_size=vocab, embedding_size=emb, hidden_size=hidden,
        num_hidden_layers=_layer_count(shapes, "electra"),
        intermediate_size=shapes["electra/encoder/layer_0/intermediate/dense/kernel"][1],
        max_position_embeddings=shapes["electra/embeddings/position_embeddings"][0],
        type_vocab_size=shapes["electra/embeddings/token_type_embeddings"][0],
    )
    if not heads_known:
        sizes["num_attention_heads"] = max(1, hidden // 64)
    gen_query = "generator/encoder/layer_0/attention/self/query/kernel"
    if gen_query in shapes:
        sizes["generator_hidden_size"] = shapes[gen_query][1] / hidden
        sizes["generator_layers"] = _layer_count(shapes, "generator") / sizes["num_hidden_layers"]
    return dataclasses.replace(base, **sizes)


def _hidden(shapes: Mapping[str, tuple]) -> int | None:
    query = shapes.get("electra/encoder/layer_0/attention/self/query/kernel")
    return query[1] if query else None


def describe_sizes(config: ModelConfig) -> str:
    gen = config.generator()
    return (f"vocab={config.vocab_size} embedding={config.embedding_size} "
            f"hidden={config.hidden_size} layers={config.num_hidden_layers} "
            f"generator_hidden={gen.hidden_size} generator_layers={gen.num_hidden_layers}")


def shape_differences(expected: Mapping[str, tuple], found: Mapping[str, tuple],
                      limit: int = 8) -> str | None:
    """None when the tables agree, else a one-line summary of the differing variables."""
    differing = [name for name in set(expected) | set(found)
                 if expected.get(name) != found.get(name)]
    # Shape conflicts first (most telling), then variables only one side has, each sorted.
    differing.sort(key=lambda n: (n not in expected or n not in found, n))
    diffs = [f"{name} {_fmt(expected.get(name))} vs {_fmt(found.get(name))}"
             for name in differing]
    if not diffs:
        return None
    more = f"; ... and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return f"{len(diffs)} variables differ (model vs checkpoint): {'; '.join(diffs[:limit])}{more}"


def _fmt(shape: tuple | None) -> str:
    return "absent" if shape is None else "[" + ",".join(map(str, shape)) + "]"


def read_tf1_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every ELECTRA model variable of a TF1 checkpoint as NumPy (no step, no Adam slots)."""
    opened = reader(prefix)
    return {name: opened.get_tensor(name) for name in checkpoint_shapes(prefix)}


def _variables(model) -> list:
    """The variables of a Keras model/layer or tf.Module, or of the layers a trackable such as
    `tf.train.Checkpoint(backbone=...)` holds."""
    if hasattr(model, "variables"):
        return list(model.variables)
    found = {}
    for child in tf.train.TrackableView(model).descendants():
        if isinstance(child, (keras.layers.Layer, tf.Module)):
            found.update((id(v), v) for v in child.variables)
    return list(found.values())


def model_tf1_variables(model) -> dict[str, tf.Variable]:
    """The model's variables that have a TF1 name, keyed by it (a shared variable appears once)."""
    named: dict[str, tf.Variable] = {}
    for variable in _variables(model):
        name = tf1_name(variable.path)
        if name is None:
            continue
        if name in named and named[name] is not variable:
            raise ValueError(f"two variables map to the TF1 name {name}: "
                             f"{named[name].path} and {variable.path}")
        named[name] = variable
    return named


def restore_tf1(model, prefix: str) -> list[str]:
    """Assigns a TF1 checkpoint's weights to every variable of `model` that has a TF1 name.

    Only the scopes the model has are compared (a fine-tuning model takes `electra/` and leaves the
    generator alone); variables without a TF1 name (task heads) keep their initial values.
    Returns the restored names. Raises UserError listing the differing variables and shapes.
    """
    wanted = model_tf1_variables(model)
    if not wanted:
        raise ValueError("the model has no variable with an ELECTRA TF1 name; is it built?")
    scopes = {name.split("/")[0] for name in wanted}
    found = {name: shape for name, shape in checkpoint_shapes(prefix).items()
             if name.split("/")[0] in scopes}
    expected = {name: tuple(v.shape) for name, v in wanted.items()}
    diff = shape_differences(expected, found)
    if diff:
        raise UserError(f"TF1 checkpoint {prefix} ({_sizes_or_unknown(found)}) does not fit the "
                        f"model ({_sizes_or_unknown(expected)}): {diff}")
    opened = reader(prefix)
    for name, variable in wanted.items():
        variable.assign(opened.get_tensor(name).astype(variable.dtype))
    return sorted(wanted)


def _sizes_or_unknown(shapes: Mapping[str, tuple]) -> str:
    try:
        return describe_sizes(infer_config(shapes))
    except (UserError, KeyError, IndexError, ZeroDivisionError):
        return "sizes unknown"


def model_tf1_values(model) -> dict[str, np.ndarray]:
    return {name: np.asarray(v.numpy()) for name, v in model_tf1_variables(model).items()}


def write_tf1_checkpoint(values: Mapping[str, np.ndarray], output_dir: str,
                         global_step: int = 0, overwrite: bool = False,
                         basename: str = "model.ckpt") -> str:
    """Writes a name-based TF1 checkpoint (what tf.compat.v1.train.Saver writes) into output_dir.

    Variables are stored under exactly their TF1 names plus `global_step` (int64), with the
    `checkpoint` state file, so tf.train.load_checkpoint / latest_checkpoint and the reference's
    init_from_checkpoint read it. Files are written to a hidden directory inside output_dir and
    moved in one by one, the index after the data and the `checkpoint` file last, so a reader
    finds the new checkpoint only once it is complete. Returns the checkpoint prefix.
    """
    prefix = io.join(output_dir, basename)
    state_file = io.join(output_dir, "checkpoint")
    existing = [p for p in (f"{prefix}.index", state_file) if tf.io.gfile.exists(p)]
    if existing and not overwrite:
        raise UserError(f"{output_dir} already holds a checkpoint ({existing[0]}); "
                        "pass --overwrite to replace it")
    names = sorted(values)
    tensors = [tf.constant(values[name]) for name in names]
    names.append("global_step")
    tensors.append(tf.constant(global_step, tf.int64))
    with io.staging_directory(output_dir, "tf1") as staging:
        with tf.device("/cpu:0"):
            tf.raw_ops.SaveV2(prefix=io.join(staging, basename), tensor_names=names,
                              shape_and_slices=[""] * len(names), tensors=tensors)
        io.move_files(staging, output_dir, last=(f"{basename}.index",))
    # The CheckpointState text proto with a relative path, so the directory can be moved.
    io.write_text(state_file, f'model_checkpoint_path: "{basename}"\n'
                              f'all_model_checkpoint_paths: "{basename}"\n')
    return prefix
