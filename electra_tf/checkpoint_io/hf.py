"""Reads and writes Hugging Face model directories (config.json + model.safetensors or
tf_model.h5) without PyTorch or transformers.

Supported architectures (config.json "architectures", else told by the tensor names):

- `ElectraForPreTraining`: the discriminator tower and its head (`discriminator_predictions`);
- `ElectraForMaskedLM`: the generator tower and its head (`generator_predictions`,
  `generator_lm_head`); HF stores the generator's own copy of the embeddings: imported together
  with a discriminator directory, they must equal the discriminator's (ELECTRA shares one block)
  or the discriminator's are used and a note says so;
- `ElectraModel`, `BertModel`, `BertForMaskedLM`: an encoder only, imported as the
  discriminator tower (the heads stay freshly initialized; BERT's pooler and MLM head are
  not part of ELECTRA and are left out).

Every tensor is mapped to the TF1 name of the same variable (tf1.py), which this project's
variable paths end with; PyTorch's linear weights are [out, in], ours [in, out]. Sizes come from
config.json, including `num_attention_heads` (which need not be hidden / 64). Only exact (erf)
GELU, `model_type` electra or bert and absolute position embeddings are accepted.
"""

import dataclasses
import json
import re
from io import BytesIO

import numpy as np
import tensorflow as tf

from electra_tf import io
from electra_tf.checkpoint_io import tf1
from electra_tf.cli import UserError
from electra_tf.config import CONFIG_FILE, ModelConfig

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
H5_FILE = "tf_model.h5"
PYTORCH_FILE = "pytorch_model.bin"
VOCAB_FILE = "vocab.txt"

DISCRIMINATOR, GENERATOR, ENCODER = "discriminator", "generator", "encoder"
ARCHITECTURES = {"ElectraForPreTraining": DISCRIMINATOR, "ElectraForMaskedLM": GENERATOR,
                 "ElectraModel": ENCODER, "BertModel": ENCODER, "BertForMaskedLM": ENCODER}
MODEL_TYPES = ("electra", "bert")
ACTIVATIONS = ("gelu",)  # transformers' "gelu" is the exact erf GELU; gelu_new etc. are tanh
SUPPORTED = ", ".join(ARCHITECTURES)
# Tensors of a supported architecture that are not part of an ELECTRA model (a buffer, BERT's
# pooler and masked-LM head, the tied copy of the word embeddings).
_UNUSED = re.compile(r"(?:embeddings\.position_ids|pooler\.dense\.(?:weight|bias)|"
                     r"cls\.predictions\..+|generator_lm_head\.weight)")
_BASE_PREFIXES = ("electra.", "bert.")
_HEAD_PREFIXES = ("discriminator_predictions.", "generator_predictions.", "generator_lm_head.",
                  "cls.", "pooler.")

CONVERT_BIN_COMMAND = (
    "python -c \"import torch; from safetensors.torch import save_file; "
    "save_file({{k: v.clone().contiguous() for k, v in torch.load('{d}/pytorch_model.bin', "
    "map_location='cpu').items()}}, '{d}/model.safetensors', metadata={{'format': 'pt'}})\"")


@dataclasses.dataclass
class HFModel:
    """One HF model directory, read and checked: its family, sizes and tensors (HF names, the
    base model's prefix removed: `embeddings.*`, `encoder.*`, heads as they are)."""

    directory: str
    family: str
    architecture: str
    config: ModelConfig  # this file's tower as a discriminator-shaped ModelConfig
    tensors: dict
    weights_file: str
    unused: list


def split_paths(path: str) -> list[str]:
    return [p for p in (path or "").split(",") if p]


def looks_like_hf_dir(path: str) -> bool:
    """A directory holding HF weights, or a config.json with a "model_type" (ours has none)."""
    if not tf.io.gfile.isdir(path):
        return False
    if any(tf.io.gfile.exists(io.join(path, name))
           for name in (SAFETENSORS_FILE, SAFETENSORS_INDEX, H5_FILE, PYTORCH_FILE)):
        return True
    config = io.join(path, CONFIG_FILE)
    if not tf.io.gfile.exists(config):
        return False
    try:
        return "model_type" in io.read_json(config)
    except (ValueError, tf.errors.OpError):
        return False


def is_hf(path: str) -> bool:
    """True when `path` (one directory, or a comma-separated pair) names HF model directories."""
    paths = split_paths(path)
    return bool(paths) and any(looks_like_hf_dir(p) for p in paths)


def check_paths(path: str, flag: str) -> list[str]:
    """The directories of `path`, each with config.json and readable weights; UserError if not."""
    paths = split_paths(path)
    if len(paths) > 2:
        raise UserError(f"{flag}={path}: at most two HF directories (a discriminator or encoder, "
                        "and an ElectraForMaskedLM generator)")
    for directory in paths:
        if not tf.io.gfile.isdir(directory):
            raise UserError(f"{flag}: {directory} is not a directory")
        if not tf.io.gfile.exists(io.join(directory, CONFIG_FILE)):
            raise UserError(f"{directory}: no {CONFIG_FILE} (an HF model directory needs it "
                            "beside its weights)")
        _weights_file(directory)
    return paths


def _weights_file(directory: str) -> str:
    for name in (SAFETENSORS_FILE, SAFETENSORS_INDEX, H5_FILE):
        if tf.io.gfile.exists(io.join(directory, name)):
            return io.join(directory, name)
    if tf.io.gfile.exists(io.join(directory, PYTORCH_FILE)):
        raise UserError(f"{io.join(directory, PYTORCH_FILE)}: PyTorch pickles are not read "
                        f"(no PyTorch here); convert it once where torch is installed: "
                        + CONVERT_BIN_COMMAND.format(d=directory))
    raise UserError(f"{directory}: no {SAFETENSORS_FILE} or {H5_FILE}")


# --- reading ---------------------------------------------------------------------------------

def _read_bytes(path: str) -> bytes:
    # Through tf.io.gfile, so the weights may be on any filesystem (safetensors' and h5py's own
    # file readers know only local paths).
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.OpError as e:
        raise UserError(f"{path}: cannot read ({io.first_line(e)})") from None


def _read_safetensors(path: str) -> dict:
    from safetensors.numpy import load
    data = _read_bytes(path)
    try:
        return dict(load(data))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None


def _read_safetensors_index(path: str) -> dict:
    directory = io.dirname(path)
    shards = sorted(set(io.read_json(path).get("weight_map", {}).values()))
    tensors = {}
    for shard in shards:
        tensors.update(_read_safetensors(io.join(directory, shard)))
    return tensors


def h5_name_to_hf(name: str) -> tuple[str, bool]:
    """A tf_model.h5 weight name (e.g. `tf_electra_for_pre_training/electra/encoder/layer_._0/
    attention/self/query/kernel:0`) -> (the PyTorch-style name, whether it is a kernel to
    transpose). The leading model scope is dropped."""
    parts = name.split(":")[0].strip("/").split("/")
    start = next((i + 1 for i in range(len(parts) - 1, -1, -1)
                  if re.fullmatch(r"tf_(?:electra|bert)_\w+", parts[i])), 1)
    parts = [p.replace("layer_._", "layer.") for p in parts[start:]]
    leaf = parts[-1]
    transpose = leaf == "kernel"
    if leaf in ("kernel", "gamma", "embeddings"):
        parts[-1] = "weight"
    elif leaf == "beta":
        parts[-1] = "bias"
    return ".".join(parts), transpose


def _read_h5(path: str) -> dict:
    import h5py
    tensors = {}
    data = _read_bytes(path)
    try:
        with h5py.File(BytesIO(data), "r") as f:
            def visit(name, item):
                if isinstance(item, h5py.Dataset):
                    hf_name, transpose = h5_name_to_hf(name)
                    value = np.asarray(item)
                    tensors[hf_name] = value.T if transpose else value
            f.visititems(visit)
    except OSError as e:
        raise UserError(f"{path}: not a readable HDF5 file ({e})") from None
    return tensors


def read_tensors(directory: str) -> tuple[dict, str]:
    path = _weights_file(directory)
    if path.endswith(SAFETENSORS_INDEX):
        return _read_safetensors_index(path), path
    if path.endswith(".h5"):
        return _read_h5(path), path
    return _read_safetensors(path), path


def _field(config: dict, name: str, path: str, kind=int, default=None):
    value = config.get(name, default)
    if value is None:
        raise UserError(f"{path}: missing field {name}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise UserError(f"{path}: field {name}={value!r} must be a positive integer")
    if kind is float and not isinstance(value, (int, float)):
        raise UserError(f"{path}: field {name}={value!r} must be a number")
    return value


def config_from_hf(values: dict, path: str) -> tuple[ModelConfig, str | None]:
    """(the ModelConfig of the tower config.json describes, its architecture or None)."""
    model_type = values.get("model_type")
    if model_type not in MODEL_TYPES:
        raise UserError(f"{path}: model_type={model_type!r} is not supported; supported: "
                        f"{', '.join(MODEL_TYPES)} ({SUPPORTED})")
    architectures = values.get("architectures") or []
    architecture = architectures[0] if architectures else None
    if architecture is not None and architecture not in ARCHITECTURES:
        raise UserError(f"{path}: architectures={architectures} is not supported; supported: "
                        f"{SUPPORTED}")
    activation = values.get("hidden_act", "gelu")
    if activation not in ACTIVATIONS:
        raise UserError(f"{path}: hidden_act={activation!r} is not supported; supported: "
                        f"{', '.join(ACTIVATIONS)} (exact erf GELU)")
    position = values.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise UserError(f"{path}: position_embedding_type={position!r} is not supported; "
                        "supported: absolute")
    hidden = _field(values, "hidden_size", path)
    embedding = (_field(values, "embedding_size", path, default=hidden)
                 if model_type == "electra" else hidden)
    config = ModelConfig(
        vocab_size=_field(values, "vocab_size", path),
        embedding_size=embedding, hidden_size=hidden,
        num_hidden_layers=_field(values, "num_hidden_layers", path),
        num_attention_heads=_field(values, "num_attention_heads", path),
        intermediate_size=_field(values, "intermediate_size", path),
        hidden_dropout_prob=float(_field(values, "hidden_dropout_prob", path, float, 0.1)),
        attention_probs_dropout_prob=float(
            _field(values, "attention_probs_dropout_prob", path, float, 0.1)),
        max_position_embeddings=_field(values, "max_position_embeddings", path, default=512),
        type_vocab_size=_field(values, "type_vocab_size", path, default=2),
        initializer_range=float(_field(values, "initializer_range", path, float, 0.02)),
        layer_norm_eps=float(_field(values, "layer_norm_eps", path, float, 1e-12)))
    if hidden % config.num_attention_heads:
        raise UserError(f"{path}: hidden_size={hidden} is not a multiple of "
                        f"num_attention_heads={config.num_attention_heads}")
    return config, architecture


def hf_shapes(config: ModelConfig, family: str) -> dict:
    """Every tensor of an HF model of `family` (base prefix removed) with its shape."""
    v, e, h = config.vocab_size, config.embedding_size, config.hidden_size
    shapes = {"embeddings.word_embeddings.weight": (v, e),
              "embeddings.position_embeddings.weight": (config.max_position_embeddings, e),
              "embeddings.token_type_embeddings.weight": (config.type_vocab_size, e),
              "embeddings.LayerNorm.weight": (e,), "embeddings.LayerNorm.bias": (e,)}
    if e != h:
        shapes.update({"embeddings_project.weight": (h, e), "embeddings_project.bias": (h,)})
    inner = config.intermediate_size
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}"
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes.update({f"{p}.{part}.weight": (h, h), f"{p}.{part}.bias": (h,)})
        shapes.update({f"{p}.intermediate.dense.weight": (inner, h),
                       f"{p}.intermediate.dense.bias": (inner,),
                       f"{p}.output.dense.weight": (h, inner), f"{p}.output.dense.bias": (h,)})
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes.update({f"{p}.{norm}.weight": (h,), f"{p}.{norm}.bias": (h,)})
    if family == DISCRIMINATOR:
        shapes.update({"discriminator_predictions.dense.weight": (h, h),
                       "discriminator_predictions.dense.bias": (h,),
                       "discriminator_predictions.dense_prediction.weight": (1, h),
                       "discriminator_predictions.dense_prediction.bias": (1,)})
    elif family == GENERATOR:
        shapes.update({"generator_predictions.dense.weight": (e, h),
                       "generator_predictions.dense.bias": (e,),
                       "generator_predictions.LayerNorm.weight": (e,),
                       "generator_predictions.LayerNorm.bias": (e,),
                       "generator_lm_head.bias": (v,)})
    return shapes


_LEAF = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}


def hf_to_tf1(name: str, family: str) -> tuple[str, bool]:
    """(TF1 name, transpose) of an HF tensor name (base prefix removed) of `family`."""
    tower = "generator" if family == GENERATOR else "electra"
    heads = {"discriminator_predictions.dense_prediction.": "discriminator_predictions/dense_1/",
             "discriminator_predictions.dense.": "discriminator_predictions/dense/",
             "generator_predictions.dense.": "generator_predictions/dense/",
             "generator_predictions.LayerNorm.": "generator_predictions/LayerNorm/"}
    if name == "generator_lm_head.bias":
        return "generator_predictions/output_bias", False
    table = re.fullmatch(r"embeddings\.(word_embeddings|position_embeddings|"
                         r"token_type_embeddings)\.weight", name)
    if table:
        return f"electra/embeddings/{table.group(1)}", False
    stem, leaf = name.rsplit(".", 1)
    norm = stem.endswith("LayerNorm")
    tf1_leaf = ({"weight": "gamma", "bias": "beta"} if norm
                else {"weight": "kernel", "bias": "bias"})[leaf]
    for hf_prefix, tf1_prefix in heads.items():
        if name.startswith(hf_prefix):
            return f"{tf1_prefix}{tf1_leaf}", tf1_leaf == "kernel"
    if stem == "embeddings.LayerNorm":
        return f"electra/embeddings/LayerNorm/{tf1_leaf}", False
    path = re.sub(r"^encoder\.layer\.(\d+)\.", r"encoder.layer_\1.", stem).replace(".", "/")
    return f"{tower}/{path}/{tf1_leaf}", tf1_leaf == "kernel"


def _normalize(tensors: dict) -> dict:
    """Base prefix ("electra." / "bert.") removed; old LayerNorm gamma/beta names renamed."""
    out = {}
    for name, value in tensors.items():
        for prefix in _BASE_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        out[name] = value
    return out


def _family_of(tensors: dict) -> str:
    if any(n.startswith("discriminator_predictions.") for n in tensors):
        return DISCRIMINATOR
    if any(n.startswith("generator_predictions.") for n in tensors):
        return GENERATOR
    return ENCODER


def _first(names, limit: int = 4) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_hf(directory: str) -> HFModel:
    """Reads and checks one HF directory: config.json fields, tensor names and shapes, the
    vocabulary beside it. Every problem is a one-line UserError naming the file."""
    config_path = io.join(directory, CONFIG_FILE)
    if not tf.io.gfile.exists(config_path):
        raise UserError(f"{directory}: no {CONFIG_FILE} (an HF model directory needs it beside "
                        "its weights)")
    try:
        values = io.read_json(config_path)
    except (ValueError, tf.errors.OpError) as e:
        raise UserError(f"{config_path}: not valid JSON ({io.first_line(e)})") from None
    config, architecture = config_from_hf(values, config_path)
    raw, weights_file = read_tensors(directory)
    tensors = _normalize(raw)
    family = ARCHITECTURES[architecture] if architecture else _family_of(tensors)
    architecture = architecture or {DISCRIMINATOR: "ElectraForPreTraining",
                                    GENERATOR: "ElectraForMaskedLM"}.get(family, "ElectraModel")
    expected = hf_shapes(config, family)
    # Messages name tensors as the file does (with its base prefix, if it has one).
    base = next((p for p in _BASE_PREFIXES if any(n.startswith(p) for n in raw)), "")
    if not base and family != ENCODER:
        base = "electra."

    def shown(name):
        return name if name.startswith(_HEAD_PREFIXES) else base + name

    unused = sorted(shown(n) for n in tensors if n not in expected and _UNUSED.fullmatch(n))
    missing = [shown(n) for n in expected if n not in tensors]
    extra = [shown(n) for n in tensors if n not in expected and shown(n) not in unused]
    if missing:
        raise UserError(f"{weights_file}: {len(missing)} tensors of {architecture} missing: "
                        f"{_first(missing)}")
    if extra:
        raise UserError(f"{weights_file}: {len(extra)} unexpected tensors for {architecture}: "
                        f"{_first(extra)}")
    wrong = [f"{shown(n)} {list(tensors[n].shape)} (config.json: {list(expected[n])})"
             for n in sorted(expected) if tuple(tensors[n].shape) != expected[n]]
    if wrong:
        raise UserError(f"{weights_file}: {len(wrong)} tensors contradict {config_path}: "
                        f"{_first(wrong, 3)}")
    vocab = io.join(directory, VOCAB_FILE)
    if tf.io.gfile.exists(vocab):
        lines = sum(1 for _ in tf.io.gfile.GFile(vocab, "r"))
        if lines != config.vocab_size:
            raise UserError(f"{vocab}: {lines} tokens, but {config_path} has vocab_size="
                            f"{config.vocab_size}")
    return HFModel(directory, family, architecture, config,
                   {n: tensors[n] for n in expected}, weights_file, unused)


# --- HF <-> this project (TF1 names) ---------------------------------------------------------

@dataclasses.dataclass
class Imported:
    config: ModelConfig | None  # None for a generator alone (the discriminator's sizes unknown)
    values: dict  # TF1 name -> array, [in, out] kernels
    sources: dict  # TF1 name -> "file: HF name"
    notes: list
    models: list


def import_dirs(path: str, flag: str = "--init_checkpoint") -> Imported:
    """Reads one or two HF directories (a discriminator or encoder, and/or an
    ElectraForMaskedLM) into TF1-named values and the combined ModelConfig."""
    models = [read_hf(d) for d in check_paths(path, flag)]
    towers = [m for m in models if m.family != GENERATOR]
    generators = [m for m in models if m.family == GENERATOR]
    if len(towers) > 1 or len(generators) > 1:
        raise UserError(f"{flag}={path}: give one discriminator or encoder directory and at most "
                        "one ElectraForMaskedLM directory")
    values, sources, notes = {}, {}, []
    for model in generators + towers:  # the discriminator's embeddings win
        for name, value in model.tensors.items():
            tf1_name, transpose = hf_to_tf1(name, model.family)
            values[tf1_name] = np.ascontiguousarray(value.T if transpose else value)
            sources[tf1_name] = f"{model.weights_file}: {name}"
        if model.unused:
            notes.append(f"{model.weights_file}: left out (not part of ELECTRA): "
                         f"{_first(model.unused)}")
    config = towers[0].config if towers else None
    if generators:
        gen = generators[0]
        if towers:
            config = _with_generator(config, gen, towers[0])
            differing = [n for n in gen.tensors if n.startswith("embeddings.")
                         and not np.array_equal(gen.tensors[n], towers[0].tensors[n])]
            if differing:
                notes.append(f"{gen.weights_file}: the generator's embeddings differ from the "
                             f"discriminator's ({_first(differing, 2)}); ELECTRA shares one "
                             f"block: the discriminator's ({towers[0].weights_file}) are used")
            else:
                notes.append("the generator's embeddings equal the discriminator's (shared)")
    return Imported(config, values, sources, notes, models)


def _with_generator(config: ModelConfig, gen: HFModel, disc: HFModel) -> ModelConfig:
    g, where = gen.config, io.join(gen.directory, CONFIG_FILE)
    for field in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
        if getattr(g, field) != getattr(config, field):
            raise UserError(f"{where}: {field}={getattr(g, field)} differs from the "
                            f"discriminator's {getattr(config, field)} "
                            f"({io.join(disc.directory, CONFIG_FILE)})")
    combined = dataclasses.replace(
        config, generator_hidden_size=g.hidden_size / config.hidden_size,
        generator_layers=g.num_hidden_layers / config.num_hidden_layers,
        generator_num_attention_heads=g.num_attention_heads)
    mine = combined.generator()
    if (mine.hidden_size, mine.num_hidden_layers) != (g.hidden_size, g.num_hidden_layers):
        raise UserError(f"{where}: hidden_size={g.hidden_size} num_hidden_layers="
                        f"{g.num_hidden_layers} cannot be expressed as fractions of the "
                        "discriminator's")
    if g.intermediate_size != mine.intermediate_size:
        raise UserError(f"{where}: intermediate_size={g.intermediate_size}; this project's "
                        f"generator has 4 x hidden_size = {mine.intermediate_size}")
    return combined


def _part_of(tf1_name: str) -> str:
    return "embeddings" if tf1_name.startswith("electra/embeddings/") else tf1_name.split("/")[0]


def _fmt(shape) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def assign(model, imported: Imported, path: str, flag: str) -> list[str]:
    """Assigns the imported values to `model`'s variables. Every part (embeddings, discriminator
    tower, generator tower, each head) that both have must match name for name and shape for
    shape; parts only the model has keep their initial values. Returns the assigned names."""
    wanted = tf1.model_tf1_variables(model)
    if not wanted:
        raise ValueError("the model has no variable with an ELECTRA TF1 name; is it built?")
    common = {_part_of(n) for n in wanted} & {_part_of(n) for n in imported.values}
    if not common:
        raise UserError(f"{flag}={path}: holds no part of this model")
    _check_heads(model, imported, path, flag)
    names = {n for n in wanted if _part_of(n) in common} | {
        n for n in imported.values if _part_of(n) in common}
    problems = []
    for name in sorted(names):
        have = tuple(wanted[name].shape) if name in wanted else None
        got = imported.values[name].shape if name in imported.values else None
        if have != got:
            source = imported.sources.get(name, name)
            problems.append(f"{source} {_fmt(got) if got else 'absent'} vs model "
                            f"{_fmt(have) if have else 'absent'}")
    if problems:
        raise UserError(f"{flag}={path}: does not fit the model: {len(problems)} tensors differ: "
                        f"{'; '.join(problems[:4])}" + ("; ..." if len(problems) > 4 else ""))
    for name in names:
        wanted[name].assign(imported.values[name].astype(wanted[name].dtype))
    return sorted(names)


def _check_heads(model, imported: Imported, path: str, flag: str) -> None:
    """Head counts are invisible in the shapes: the model's must be the config.json ones."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        return
    generator_config = getattr(getattr(model, "generator", None), "config", None)
    for hf_model in imported.models:
        ours = generator_config if hf_model.family == GENERATOR else config
        if ours is None or (hf_model.family == GENERATOR and ours is config):
            continue
        if ours.num_attention_heads != hf_model.config.num_attention_heads:
            field = ("generator_num_attention_heads" if hf_model.family == GENERATOR
                     else "num_attention_heads")
            raise UserError(
                f"{flag}={path}: {io.join(hf_model.directory, CONFIG_FILE)} has "
                f"num_attention_heads={hf_model.config.num_attention_heads}, the model has "
                f"{ours.num_attention_heads} ({field})")


# --- writing ---------------------------------------------------------------------------------

def hf_config_dict(config: ModelConfig, architecture: str) -> dict:
    """config.json of an ELECTRA tower of `config` for transformers' ElectraConfig."""
    return {"architectures": [architecture], "model_type": "electra",
            "vocab_size": config.vocab_size, "embedding_size": config.embedding_size,
            "hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size, "hidden_act": "gelu",
            "hidden_dropout_prob": config.hidden_dropout_prob,
            "attention_probs_dropout_prob": config.attention_probs_dropout_prob,
            "max_position_embeddings": config.max_position_embeddings,
            "type_vocab_size": config.type_vocab_size,
            "initializer_range": config.initializer_range,
            "layer_norm_eps": config.layer_norm_eps, "position_embedding_type": "absolute",
            "pad_token_id": 0}


def export_values(config: ModelConfig, values: dict) -> dict:
    """TF1-named values of one of our models -> {subdirectory: (config.json dict, HF tensors)}:
    `discriminator` (ElectraForPreTraining, or ElectraModel when the model has no
    discriminator head, e.g. a fine-tuned one) and, when the model has a generator,
    `generator` (ElectraForMaskedLM)."""
    has_head = "discriminator_predictions/dense/kernel" in values
    towers = {"discriminator": (DISCRIMINATOR if has_head else ENCODER, config)}
    if "generator_predictions/output_bias" in values:
        towers["generator"] = (GENERATOR, config.generator())
    out = {}
    for subdir, (family, tower_config) in towers.items():
        tensors = {}
        for name in hf_shapes(tower_config, family):
            tf1_name, transpose = hf_to_tf1(name, family)
            value = values[tf1_name]
            prefix = "" if name.startswith(_HEAD_PREFIXES) else "electra."
            tensors[prefix + name] = np.ascontiguousarray(value.T if transpose else value)
        architecture = {DISCRIMINATOR: "ElectraForPreTraining", ENCODER: "ElectraModel",
                        GENERATOR: "ElectraForMaskedLM"}[family]
        if family == ENCODER:  # ElectraModel's own file has no "electra." prefix
            tensors = {n[len("electra."):]: v for n, v in tensors.items()}
        out[subdir] = (hf_config_dict(tower_config, architecture), tensors)
    return out


def write_hf_dir(directory: str, config_dict: dict, tensors: dict,
                 vocab_file: str | None = None, overwrite: bool = False) -> str:
    """Writes config.json and model.safetensors (metadata format=pt, as transformers expects)."""
    from safetensors.numpy import save

    target = io.join(directory, SAFETENSORS_FILE)
    if tf.io.gfile.exists(target) and not overwrite:
        raise UserError(f"{directory} already holds {SAFETENSORS_FILE}; pass --overwrite to "
                        "replace it")
    tf.io.gfile.makedirs(directory)
    data = save({n: np.ascontiguousarray(v, np.float32) for n, v in tensors.items()},
                metadata={"format": "pt"})
    io.write_bytes(target, data)
    io.write_text(io.join(directory, CONFIG_FILE), json.dumps(config_dict, indent=2) + "\n")
    if vocab_file:
        io.copy_file(vocab_file, io.join(directory, VOCAB_FILE))
    return directory
