"""Exports an ELECTRA checkpoint as a SavedModel for TF Serving (the recipe has no export at all).

`load_checkpoint_model` rebuilds the model a checkpoint holds: this project's pre-training model
(ElectraPretrainer: generator, discriminator and both heads), a fine-tuned model of any task
(config.json + finetune_task.json beside the checkpoint) or a checkpoint in the original TF1
layout (sizes inferred from its shapes). `export_saved_model` wraps it with the data stage's
in-graph tokenizer (see serving.py for the signatures) and writes `export_dir/<version>/`, the
integer version directory TF Serving's model_base_path expects, atomically: the SavedModel is
written under a hidden temporary name and renamed into place, so a server polling export_dir never
loads a half-written version.
"""

import dataclasses
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from data_prep import tokenization
from electra_tf.cli import UserError
from electra_tf.config import SPECIAL_TOKENS, ElectraConfig
from electra_tf.export import serving
from electra_tf.finetune import model as model_lib
from electra_tf.finetune import tasks
from electra_tf.interop import tf1_checkpoint
from electra_tf.training import checkpoints

# The head of each fine-tuned task kind (finetune_task.json "kind").
TASK_HEADS = {"classification": "classifier", "regression": "regressor", "tagging": "tagger",
              "span": "qa"}
HEADS = ("auto", "discriminator", "generator", *TASK_HEADS.values())


@dataclasses.dataclass
class CheckpointModel:
    """A model rebuilt from a checkpoint. `task` is the fine-tuning task metadata, or None for
    a pre-training model (ElectraPretrainer)."""

    config: ElectraConfig
    model: keras.Model
    prefix: str
    task: dict | None = None

    @property
    def directory(self) -> str:
        return os.path.dirname(self.prefix)

    @property
    def default_head(self) -> str:
        if self.task is None:
            return "discriminator"
        return TASK_HEADS.get(self.task["kind"], self.task["kind"])


def build_pretrainer(config: ElectraConfig) -> keras.Model:
    """An ElectraPretrainer holding weights only: export and conversion never run its masking,
    so the special-token ids it needs for that are placeholders (their positions in
    SPECIAL_TOKENS)."""
    from electra_tf.pretraining.objective import ElectraPretrainer
    ids = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    return ElectraPretrainer(config, seed=0, pad_id=ids["[PAD]"], mask_id=ids["[MASK]"],
                             cls_id=ids["[CLS]"], sep_id=ids["[SEP]"])


def _load_config(directory: str, flag: str, prefix: str) -> ElectraConfig:
    path = os.path.join(directory, checkpoints.CONFIG_FILE)
    if not os.path.exists(path):
        raise UserError(f"{flag}: no {checkpoints.CONFIG_FILE} beside the checkpoint {prefix}")
    try:
        return ElectraConfig.load(path)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: not a valid model configuration ({e})") from None


def load_checkpoint_model(path: str, flag: str = "--checkpoint") -> CheckpointModel:
    """Rebuilds and restores the model of a model directory or checkpoint prefix (ours or TF1)."""
    prefix = checkpoints.resolve_checkpoint(path, flag)
    if tf1_checkpoint.is_tf1_checkpoint(prefix):
        config = tf1_checkpoint.infer_config(tf1_checkpoint.checkpoint_shapes(prefix))
        model = build_pretrainer(config)
        tf1_checkpoint.restore_tf1(model, prefix)
        return CheckpointModel(config, model, prefix)
    directory = os.path.dirname(prefix)
    config = _load_config(directory, flag, prefix)
    task = model_lib.load_task_metadata(directory)
    if task is None:
        model = build_pretrainer(config)
    elif task.get("kind") in TASK_HEADS:
        model = model_lib.build_model(task, config)
    else:
        raise UserError(f"{flag}={path}: a fine-tuned {task.get('kind')!r} model; export "
                        f"supports pre-training models and the task kinds "
                        f"{', '.join(TASK_HEADS)}")
    checkpoints.restore_model_weights(model, prefix, flag)
    return CheckpointModel(config, model, prefix, task)


def build_serving_module(loaded: CheckpointModel, vocab_file: str, head: str = "auto",
                         max_seq_length: int | None = None, top_k: int = 5,
                         do_lower_case: bool = True) -> serving.ServingModule:
    """The tf.Module whose signatures serve `loaded` (UserError on inconsistent flags)."""
    config = loaded.config
    tokenizer = tokenization.Tokenizer(vocab_file, do_lower_case=do_lower_case,
                                       strip_accents=do_lower_case)
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(f"--vocab_file={vocab_file} has {tokenizer.vocab_size} tokens but the "
                        f"checkpoint's embedding table has {config.vocab_size} rows")
    # A fine-tuned model is served at the length it was fine-tuned with (QA windows included).
    max_seq_length = (max_seq_length or (loaded.task or {}).get("max_seq_length")
                      or config.max_seq_length)
    if not 3 <= max_seq_length <= config.max_position_embeddings:
        raise UserError(f"--max_seq_length={max_seq_length} must be in "
                        f"[3, {config.max_position_embeddings}] (the model's position table)")
    head = loaded.default_head if head == "auto" else head
    if head not in HEADS:
        raise UserError(f"--head={head} is not one of {', '.join(HEADS)}")
    if (head in TASK_HEADS.values()) != (loaded.task is not None) or (
            loaded.task is not None and head != loaded.default_head):
        raise UserError(f"--head={head} does not fit {loaded.prefix}, which holds a "
                        f"{loaded.default_head if loaded.task else 'pre-training'} model")
    model = loaded.model
    if head == "discriminator":
        return serving.DiscriminatorServing(tokenizer, model.discriminator,
                                            model.discriminator_head, max_seq_length)
    if head == "generator":
        if not 1 <= top_k <= config.vocab_size:
            raise UserError(f"--top_k={top_k} must be in [1, {config.vocab_size}]")
        return serving.GeneratorServing(tokenizer, model.discriminator, model.generator,
                                        model.generator_head, max_seq_length, top_k)
    if head == "tagger":
        labels = loaded.task["labels"]
        return serving.TaggingServing(tokenizer, model, max_seq_length, labels,
                                      tasks.cut_off_tag(labels))
    if head == "qa":
        from electra_tf.finetune import squad_serving, squad_task
        return squad_serving.QAServing(
            tokenizer, model, loaded.task, max_seq_length,
            null_threshold=squad_task.load_null_threshold(loaded.directory))
    labels = loaded.task.get("labels") if head == "classifier" else None
    return serving.TaskServing(tokenizer, model, max_seq_length, labels)


def next_version(export_dir: str) -> int:
    """One more than the highest integer version directory in export_dir (1 when none)."""
    if not os.path.isdir(export_dir):
        return 1
    versions = [int(name) for name in os.listdir(export_dir) if name.isdigit()]
    return max(versions, default=0) + 1


def _refuse_existing(target: str, overwrite: bool) -> None:
    if os.path.exists(target) and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it or choose "
                        "another --version")


def save(module: serving.ServingModule, export_dir: str, version: int | None = None,
         overwrite: bool = False) -> str:
    """Writes export_dir/<version>/ (default: the next version); returns its path."""
    version = next_version(export_dir) if version is None else version
    if version < 0:
        raise UserError(f"--version={version} must be a non-negative integer")
    target = os.path.join(export_dir, str(version))
    _refuse_existing(target, overwrite)
    os.makedirs(export_dir, exist_ok=True)
    # Hidden names: TF Serving only loads directories whose name is an integer.
    staging = tempfile.mkdtemp(prefix=f".export-{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        # mkdtemp makes the directory private (0700); a server running as another user (the
        # TF Serving container) must be able to read the version like any other directory.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        if os.path.exists(target):
            retired = tempfile.mkdtemp(prefix=f".replaced-{version}-", dir=export_dir)
            os.replace(target, os.path.join(retired, "old"))
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return target


def export_saved_model(checkpoint: str, vocab_file: str, export_dir: str, *,
                       head: str = "auto", max_seq_length: int | None = None, top_k: int = 5,
                       do_lower_case: bool = True, version: int | None = None,
                       overwrite: bool = False) -> str:
    """checkpoint -> export_dir/<version>/ with the serving signatures; returns that path."""
    if version is not None:
        # Checked before the (slow) model build as well as in save().
        _refuse_existing(os.path.join(export_dir, str(version)), overwrite)
    loaded = load_checkpoint_model(checkpoint)
    module = build_serving_module(loaded, vocab_file, head, max_seq_length, top_k,
                                  do_lower_case)
    return save(module, export_dir, version, overwrite)
