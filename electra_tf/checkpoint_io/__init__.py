"""Opens any ELECTRA checkpoint: this project's pre-training or fine-tuning ones, or a TF1 release.

Every tool that takes a checkpoint (`--init_checkpoint` of both trainers, `--checkpoint` of the
export and the converter, a fine-tuned `--model_dir`) comes here. A path is a model directory
(its latest checkpoint) or a checkpoint prefix, and the checkpoint is one of three kinds:

- `PRETRAINING`: an object-based checkpoint whose "model" is an `ElectraPretrainer`
  (generator, discriminator and both heads), with `config.json` (the `ModelConfig`) beside it;
- `FINETUNING`: one whose "model" is a task model (a discriminator `backbone` plus a head), with
  `config.json` and `finetune_task.json` (whose "kind" names the registered task kind that
  rebuilds it) beside it;
- `TF1`: a name-based checkpoint in the reference layout (tf1.py), sizes read from its shapes;
- `HF`: a Hugging Face model directory (config.json + model.safetensors or tf_model.h5; hf.py),
  or two of them separated by a comma (a discriminator or encoder, and an ElectraForMaskedLM
  generator), sizes read from config.json. The "prefix" of such a checkpoint is the path itself.

Weights only: optimizer slots, step and input position in a checkpoint are never restored here
(resuming a run is the Trainer's job), so continued pre-training and fine-tuning start from the
weights with fresh optimizer state.
"""

import dataclasses

import keras
import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import trackable_object_graph_pb2

from electra_tf import io
from electra_tf.checkpoint_io import hf, tf1
from electra_tf.cli import UserError
from electra_tf.config import (
    CONFIG_FILE,
    OBJECTIVE_FILE,
    SPECIAL_TOKENS,
    ModelConfig,
    ObjectiveConfig,
)
from electra_tf.finetune import registry, tasks
from electra_tf.io import first_line
from electra_tf.pretraining.objective import ElectraPretrainer

PRETRAINING, FINETUNING, TF1, HF = "pretraining", "finetuning", "tf1", "hf"
# The attribute under which each kind of our checkpoints keeps the discriminator.
_DISCRIMINATOR_ATTRIBUTE = {PRETRAINING: "discriminator", FINETUNING: "backbone"}


@dataclasses.dataclass
class Opened:
    """A model rebuilt from a checkpoint, its weights restored. `task` is the fine-tuning task
    metadata (finetune_task.json), None for a pre-training model (an ElectraPretrainer)."""

    config: ModelConfig
    model: keras.Model
    prefix: str
    task: dict | None = None

    @property
    def directory(self) -> str:
        if hf.is_hf(self.prefix):
            return hf.split_paths(self.prefix)[0]
        return io.dirname(self.prefix)

    @property
    def max_seq_length(self) -> int | None:
        """The sequence length the model was trained at; None when the checkpoint does not say.

        Fine-tuning records it in finetune_task.json, pre-training in objective.json (and
        model_dirs of earlier versions in config.json).
        """
        if self.task is not None:
            return self.task.get("max_seq_length")
        for name in (OBJECTIVE_FILE, CONFIG_FILE):
            path = io.join(self.directory, name)
            length = io.read_json(path).get("max_seq_length") if tf.io.gfile.exists(path) else None
            if length:
                return int(length)
        return None

    @property
    def head(self) -> str:
        """The serving head the model answers with by default (export's --head=auto)."""
        return "discriminator" if self.task is None else registry.kind(self.task["kind"]).head


def resolve_prefix(path: str, flag: str = "--init_checkpoint") -> str:
    """The checkpoint prefix of a prefix or of a directory holding checkpoints (its latest); an
    HF model directory (or a comma-separated pair) is its own prefix."""
    if hf.is_hf(path):
        hf.check_paths(path, flag)
        return path
    try:
        # The index first: a filesystem may call a prefix a directory when names begin with it
        # (ram:// does).
        if tf.io.gfile.exists(path + ".index"):
            return path
        is_directory = tf.io.gfile.isdir(path)
    except tf.errors.OpError as e:  # e.g. a bucket that does not exist, no credentials
        raise UserError(f"{flag}={path}: {first_line(e)}") from None
    if is_directory:
        latest = tf.train.latest_checkpoint(path)
        if not latest:
            raise UserError(f"{flag}={path}: directory holds no checkpoint")
        return latest
    raise UserError(f"{flag}={path}: no such checkpoint (expected {path}.index "
                    "or a directory with a 'checkpoint' file)")


def _model_children(prefix: str) -> set:
    """Names of the attributes of the "model" object saved in an object-based checkpoint."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf1.reader(prefix).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    for child in graph.nodes[0].children:
        if child.local_name == "model":
            return {c.local_name for c in graph.nodes[child.node_id].children}
    return set()


def identify(prefix: str) -> str | None:
    """PRETRAINING, FINETUNING, TF1 or HF by what the checkpoint holds; None when it holds no
    ELECTRA model."""
    if hf.is_hf(prefix):
        return HF
    if tf1.is_tf1_checkpoint(prefix):
        return TF1
    children = _model_children(prefix)
    return next((kind for kind, attribute in _DISCRIMINATOR_ATTRIBUTE.items()
                 if attribute in children), None)


def _load_config(path: str) -> ModelConfig:
    try:
        return ModelConfig.load(path)
    except (ValueError, tf.errors.OpError) as e:
        raise UserError(first_line(e)) from None


def model_config_of(path: str, flag: str = "--init_checkpoint") -> ModelConfig | None:
    """The sizes of the model in a checkpoint: its config.json, or for a TF1 release the sizes
    its variable shapes imply, for an HF directory the sizes its config.json gives; None when
    none is available."""
    if hf.is_hf(path):
        hf.check_paths(path, flag)
        config = hf.import_dirs(path, flag).config
        if config is None:
            raise UserError(f"{flag}={path}: an ElectraForMaskedLM (generator) alone gives no "
                            "discriminator sizes; pass its ElectraForPreTraining directory too "
                            "(DISC_DIR,GEN_DIR)")
        return config
    # A prefix is told by its index before asking for a directory (see resolve_prefix).
    is_prefix = tf.io.gfile.exists(path + ".index")
    directory = path if not is_prefix and tf.io.gfile.isdir(path) else io.dirname(path)
    config_path = io.join(directory, CONFIG_FILE)
    if tf.io.gfile.exists(config_path):
        return _load_config(config_path)
    prefix = resolve_prefix(path, flag)
    if tf1.is_tf1_checkpoint(prefix):
        return tf1.infer_config(tf1.checkpoint_shapes(prefix))
    return None


def build_pretrainer(config: ModelConfig) -> ElectraPretrainer:
    """An ElectraPretrainer to hold weights: export and conversion never run its masking, so its
    objective is the default one and the special-token ids are placeholders (their positions in
    SPECIAL_TOKENS)."""
    ids = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    # The objective must fit the position table to validate; its length is never used here.
    objective = ObjectiveConfig(max_seq_length=min(ObjectiveConfig.max_seq_length,
                                                   config.max_position_embeddings))
    return ElectraPretrainer(config, objective, seed=0, pad_id=ids["[PAD]"],
                             mask_id=ids["[MASK]"], cls_id=ids["[CLS]"], sep_id=ids["[SEP]"])


def _restore_object(model, prefix: str, path: str, flag: str) -> str:
    """Restores `model` as the checkpoint's "model" object; every variable of `model` must be
    found with its shape."""
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise UserError(f"{flag}={path}: does not fit this model: {first_line(e)}") from None
    return prefix


def restore_weights(model: keras.Model, path: str, flag: str = "--init_checkpoint") -> str:
    """Loads the weights of a checkpoint written by the Trainer (whose "model" has the layout of
    `model`, built), or of a TF1 release into an ElectraPretrainer; returns the prefix. A
    checkpoint of another architecture is a UserError. From HF directories, the parts they hold
    (an encoder into the discriminator, its head, a generator and its head) are loaded and the
    others keep their initial values."""
    prefix = resolve_prefix(path, flag)
    if hf.is_hf(prefix):
        _restore_hf(model, prefix, flag)
        return prefix
    if tf1.is_tf1_checkpoint(prefix):
        tf1.restore_tf1(model, prefix)
        return prefix
    return _restore_object(model, prefix, path, flag)


def _restore_hf(model, path: str, flag: str, discriminator_only: bool = False) -> None:
    imported = hf.import_dirs(path, flag)
    if discriminator_only:
        if imported.config is None:
            raise UserError(f"{flag}={path}: an ElectraForMaskedLM holds a generator, not the "
                            "discriminator or encoder that fine-tuning starts from")
        imported.values = {n: v for n, v in imported.values.items()
                           if n.startswith("electra/")}
    for note in imported.notes:  # what was left out, and which embeddings were used
        (logging.warning if "differ" in note else logging.info)("%s", note)
    hf.assign(model, imported, path, flag)


def restore_discriminator(backbone: keras.Model, path: str,
                          flag: str = "--init_checkpoint") -> str:
    """Loads the discriminator of any ELECTRA checkpoint into `backbone`; returns the prefix.

    From pre-training it is the model's `discriminator`, from fine-tuning its `backbone`, from a
    TF1 release the `electra/*` variables. A checkpoint of another architecture or vocabulary
    is a UserError.
    """
    prefix = resolve_prefix(path, flag)
    kind = identify(prefix)
    if kind == HF:
        _restore_hf(backbone, prefix, flag, discriminator_only=True)
        return prefix
    if kind == TF1:
        tf1.restore_tf1(backbone, prefix)
        return prefix
    if kind is None:
        children = _model_children(prefix)
        raise UserError(f"{flag}={path}: holds no ELECTRA discriminator (a model with "
                        f"{', '.join(sorted(children)) or 'no'} parts)")
    # The trackable mirrors the part of the saved model that holds the discriminator.
    part = tf.train.Checkpoint(**{_DISCRIMINATOR_ATTRIBUTE[kind]: backbone})
    return _restore_object(part, prefix, path, flag)


def open_checkpoint(path: str, flag: str = "--checkpoint") -> Opened:
    """Rebuilds and restores the model of a model directory or checkpoint prefix (any kind).

    Build it under the strategy scope and dtype policy it will run with.
    """
    prefix = resolve_prefix(path, flag)
    if hf.is_hf(prefix):
        config = model_config_of(prefix, flag)
        model = build_pretrainer(config)
        _restore_hf(model, prefix, flag)
        return Opened(config, model, prefix)
    if tf1.is_tf1_checkpoint(prefix):
        config = tf1.infer_config(tf1.checkpoint_shapes(prefix))
        model = build_pretrainer(config)
        tf1.restore_tf1(model, prefix)
        return Opened(config, model, prefix)
    directory = io.dirname(prefix)
    config_path = io.join(directory, CONFIG_FILE)
    if not tf.io.gfile.exists(config_path):
        raise UserError(f"{flag}: no {CONFIG_FILE} beside the checkpoint {prefix}")
    config = _load_config(config_path)
    task = tasks.load_task_metadata(directory)
    if task is None:
        model = build_pretrainer(config)
    else:
        model = registry.kind(task.get("kind")).build_model(task, config)
    _restore_object(model, prefix, path, flag)
    return Opened(config, model, prefix, task)


def ensure_model_config(model_dir: str, model_config: ModelConfig, write: bool) -> None:
    """Refuses a model_dir whose checkpoints belong to a model of another architecture.

    Only the architecture counts (an earlier config.json that also holds objective fields
    matches). Writes `config.json` atomically when `write` (the chief) and there is none or no
    checkpoint yet.
    """
    path = io.join(model_dir, CONFIG_FILE)
    if tf.io.gfile.exists(path) and tf.train.latest_checkpoint(model_dir):
        saved = _load_config(path)
        differing = [f"{f.name}={getattr(saved, f.name)!r} (flags: "
                     f"{getattr(model_config, f.name)!r})"
                     for f in dataclasses.fields(ModelConfig)
                     if getattr(saved, f.name) != getattr(model_config, f.name)]
        if differing:
            raise UserError(f"--model_dir={model_dir} holds a checkpoint of a different model: "
                            + ", ".join(differing) + "; use a new --model_dir")
        return
    if write:
        model_config.save(path)
