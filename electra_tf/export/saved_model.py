"""Exports an ELECTRA checkpoint as a SavedModel for TF Serving (the recipe has no export at all).

The checkpoint is opened by checkpoint_io (this project's pre-training model, a fine-tuned model
of any registered task kind, or a checkpoint in the original TF1 layout). `export_saved_model`
wraps it with the data stage's in-graph tokenizer and the signatures of its head (the
discriminator's and the generator's in electra_tf/serving.py; each fine-tuning task kind brings
its own) and writes `export_dir/<version>/`, the integer version directory TF Serving's
model_base_path expects. export_dir may be on any tf.io.gfile filesystem (local, gs://, s3://,
hdfs://). The SavedModel is written under a hidden name inside export_dir and moved into place, so
a server polling export_dir never loads a half-written version: on a local disk by one directory
rename (atomic), elsewhere file by file with saved_model.pb last (see `_publish`).

A fine-tuned model is served with the tokenizer it was fine-tuned with, read from its
finetune_task.json (vocab_file, do_lower_case, strip_accents): a flag that contradicts the
record is an error, and so is a recorded vocabulary whose sha256 no longer matches the one
recorded at fine-tuning; a --vocab_file given on purpose needs only the model's size.
"""

import sys
import uuid

import tensorflow as tf

from electra_tf import checkpoint_io, io, serving, tokenization
from electra_tf.cli import UserError
from electra_tf.config import ObjectiveConfig
from electra_tf.finetune import registry, tasks

# The --head values: the pre-trained model's two heads and one per registered task kind.
HEADS = ("auto", "discriminator", "generator", *(kind.head for kind in registry.KINDS.values()))
# The file that makes a directory a SavedModel (what loaders look for).
SAVED_MODEL_FILE = "saved_model.pb"




def tokenizer_settings(opened: checkpoint_io.Opened, vocab_file: str | None,
                       do_lower_case: bool | None, strip_accents: bool | None
                       ) -> tuple[str, bool, bool]:
    """(vocab file, do_lower_case, strip_accents) to serve `opened` with; None = unset flag.

    A fine-tuned model: its recorded settings, a contradicting flag being a UserError. A
    pre-trained one: --vocab_file is required, lower-casing defaults to on, accents are
    stripped when lower-casing.
    """
    if opened.task is None or not opened.directory:
        if not vocab_file:
            raise UserError("--vocab_file is required for a pre-training checkpoint")
        lower = True if do_lower_case is None else do_lower_case
        return vocab_file, lower, lower if strip_accents is None else strip_accents
    record = opened.task
    where = io.join(opened.directory, tasks.TASK_FILE)
    settings = {}
    for name, value in (("do_lower_case", do_lower_case), ("strip_accents", strip_accents)):
        recorded = record.get(name, record.get("do_lower_case", True))
        if value is not None and bool(value) != bool(recorded):
            raise UserError(f"--{name}={value} contradicts {name}={recorded} recorded in "
                            f"{where}; leave --{name} unset to use the recorded setting")
        settings[name] = bool(recorded)
    recorded_sha = record.get("vocab_sha256")
    if vocab_file:
        if recorded_sha and io.sha256_file(vocab_file) != recorded_sha:
            print(f"warning: --vocab_file={vocab_file} is not the fine-tuning vocabulary "
                  f"(sha256 differs from {where}); serving it as given", file=sys.stderr)
    else:
        vocab_file = io.join(opened.directory, record.get("vocab_file", "vocab.txt"))
        if not tf.io.gfile.exists(vocab_file) or tf.io.gfile.isdir(vocab_file):
            raise UserError(f"{vocab_file} (recorded in {where}) not found; pass --vocab_file")
        if recorded_sha and io.sha256_file(vocab_file) != recorded_sha:
            raise UserError(f"{vocab_file}: sha256 differs from the vocabulary recorded in "
                            f"{where}; pass the fine-tuning vocabulary as --vocab_file")
    return vocab_file, settings["do_lower_case"], settings["strip_accents"]


def build_serving_module(opened: checkpoint_io.Opened, vocab_file: str | None = None,
                         head: str = "auto", max_seq_length: int | None = None, top_k: int = 5,
                         do_lower_case: bool | None = None,
                         strip_accents: bool | None = None) -> serving.ServingModule:
    """The tf.Module whose signatures serve `opened` (UserError on inconsistent flags)."""
    config = opened.config
    vocab_file, do_lower_case, strip_accents = tokenizer_settings(
        opened, vocab_file, do_lower_case, strip_accents)
    tokenizer = tokenization.Tokenizer(vocab_file, do_lower_case=do_lower_case,
                                       strip_accents=strip_accents)
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(f"--vocab_file={vocab_file} has {tokenizer.vocab_size} tokens but the "
                        f"checkpoint's embedding table has {config.vocab_size} rows")
    # Served at the length the model was trained with (a fine-tuned one: its QA windows too),
    # else at the pre-training default within its position table.
    max_seq_length = (max_seq_length or opened.max_seq_length
                      or min(ObjectiveConfig.max_seq_length, config.max_position_embeddings))
    if not 3 <= max_seq_length <= config.max_position_embeddings:
        raise UserError(f"--max_seq_length={max_seq_length} must be in "
                        f"[3, {config.max_position_embeddings}] (the model's position table)")
    head = opened.head if head == "auto" else head
    task_heads = [kind.head for kind in registry.KINDS.values()]
    if head not in ("discriminator", "generator", *task_heads):
        raise UserError(f"--head={head} is not one of {', '.join(HEADS)}")
    if (head in task_heads) != (opened.task is not None) or (
            opened.task is not None and head != opened.head):
        raise UserError(f"--head={head} does not fit {opened.prefix}, which holds a "
                        f"{opened.head if opened.task else 'pre-training'} model")
    model = opened.model
    if opened.task is not None:
        return registry.kind(opened.task["kind"]).build_serving(
            tokenizer, model, opened.task, max_seq_length, opened.directory)
    if head == "discriminator":
        return serving.DiscriminatorServing(tokenizer, model.discriminator,
                                            model.discriminator_head, max_seq_length)
    if not 1 <= top_k <= config.vocab_size:
        raise UserError(f"--top_k={top_k} must be in [1, {config.vocab_size}]")
    return serving.GeneratorServing(tokenizer, model.discriminator, model.generator,
                                    model.generator_head, max_seq_length, top_k)


def next_version(export_dir: str) -> int:
    """One more than the highest integer version directory in export_dir (1 when none)."""
    names = io.checked(lambda path: io.listdir(path) if tf.io.gfile.isdir(path) else [],
                       export_dir, "--export_dir")
    return max((int(name) for name in names if name.isdigit()), default=0) + 1


def _refuse_existing(target: str, overwrite: bool) -> None:
    try:
        exists = tf.io.gfile.exists(target)
    except tf.errors.OpError as e:  # e.g. a bucket that does not exist, no credentials
        raise UserError(f"--export_dir={io.dirname(target)}: {io.first_line(e)}") from None
    if exists and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite to replace it or choose "
                        "another --version")


def _publish(staging: str, target: str) -> None:
    """Moves the SavedModel in `staging` to `target` (replacing a version there).

    Local disks rename the directory: the version appears whole at once, and a replaced one is
    renamed aside before it is deleted. Other filesystems (GCS, S3, HDFS, ram://) cannot be
    trusted to rename a directory in one step (GCS copies its objects one by one, ram://
    renames only the directory entry), so the files move one by one with saved_model.pb last:
    a loader that requires it (TF Serving's, tf.saved_model.load, contains_saved_model) sees
    no SavedModel until every file it refers to is in place. A replaced version loses its
    saved_model.pb first, so it never mixes old and new files as a SavedModel.
    """
    if "://" not in target:
        if tf.io.gfile.exists(target):
            retired = io.join(io.dirname(target), f".replaced-{io.basename(target)}-"
                                                  f"{uuid.uuid4().hex[:12]}")
            tf.io.gfile.rename(target, retired)
            tf.io.gfile.rename(staging, target)
            tf.io.gfile.rmtree(retired)
        else:
            tf.io.gfile.rename(staging, target)
        return
    if tf.io.gfile.exists(target):
        marker = io.join(target, SAVED_MODEL_FILE)
        if tf.io.gfile.exists(marker):
            tf.io.gfile.remove(marker)
        tf.io.gfile.rmtree(target)
    io.move_files(staging, target, last=(SAVED_MODEL_FILE,))


def save(module: serving.ServingModule, export_dir: str, version: int | None = None,
         overwrite: bool = False) -> str:
    """Writes export_dir/<version>/ (default: the next version); returns its path."""
    version = next_version(export_dir) if version is None else version
    if version < 0:
        raise UserError(f"--version={version} must be a non-negative integer")
    target = io.join(export_dir, str(version))
    _refuse_existing(target, overwrite)
    io.checked(tf.io.gfile.makedirs, export_dir, "--export_dir")
    # A hidden name: TF Serving only loads directories whose name is an integer.
    with io.staging_directory(export_dir, f"export-{version}") as staging:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        _publish(staging, target)
    return target


def export_saved_model(checkpoint: str, vocab_file: str | None, export_dir: str, *,
                       head: str = "auto", max_seq_length: int | None = None, top_k: int = 5,
                       do_lower_case: bool | None = None, strip_accents: bool | None = None,
                       version: int | None = None, overwrite: bool = False) -> str:
    """checkpoint -> export_dir/<version>/ with the serving signatures; returns that path."""
    # Checked before the (slow) model build as well as in save(), which also stops an
    # export_dir that cannot be reached.
    _refuse_existing(io.join(export_dir, str(next_version(export_dir) if version is None
                                              else version)), overwrite)
    opened = checkpoint_io.open_checkpoint(checkpoint)
    module = build_serving_module(opened, vocab_file, head, max_seq_length, top_k,
                                  do_lower_case, strip_accents)
    return save(module, export_dir, version, overwrite)
