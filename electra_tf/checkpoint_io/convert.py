"""Conversions between this project's checkpoints, the original TF1 release layout and Hugging
Face model directories (the command line is electra_tf/convert_checkpoint.py).

Every direction goes through `open_checkpoint`, which rebuilds and restores the model, and
writes atomically: an output directory never holds half a checkpoint.
"""

import numpy as np
import tensorflow as tf

from electra_tf import checkpoint_io, io
from electra_tf.checkpoint_io import hf, tf1
from electra_tf.cli import UserError
from electra_tf.config import CONFIG_FILE
from electra_tf.tokenization import load_vocab


def convert_from_tf1(tf1_path: str, output_dir: str, overwrite: bool = False) -> str:
    """TF1 checkpoint -> ElectraPretrainer checkpoint + config.json in output_dir."""
    prefix = checkpoint_io.resolve_prefix(tf1_path, "--tf1_checkpoint")
    if checkpoint_io.identify(prefix) != checkpoint_io.TF1:
        raise UserError(f"--tf1_checkpoint={tf1_path}: not a TF1 ELECTRA checkpoint (no "
                            f"{tf1.WORD_EMBEDDINGS}); for this project's checkpoints "
                            "use --to_tf1 --checkpoint")
    _prepare_output_dir(output_dir, overwrite)
    opened = checkpoint_io.open_checkpoint(prefix, "--tf1_checkpoint")
    print(f"{prefix}: {tf1.describe_sizes(opened.config)}")
    return _save(opened, output_dir)


def convert_from_hf(hf_dir: str, output_dir: str, overwrite: bool = False) -> str:
    """HF model directory (or DISC_DIR,GEN_DIR) -> ElectraPretrainer checkpoint + config.json."""
    if not hf.is_hf(hf_dir):
        raise UserError(f"--hf_dir={hf_dir}: not an HF model directory (no config.json with "
                            f"a model_type, no {hf.SAFETENSORS_FILE} or {hf.H5_FILE})")
    _prepare_output_dir(output_dir, overwrite)
    imported = hf.import_dirs(hf_dir, "--hf_dir")
    for model in imported.models:
        print(f"{model.weights_file}: {model.architecture}")
    for note in imported.notes:
        print(f"note: {note}")
    opened = checkpoint_io.open_checkpoint(hf_dir, "--hf_dir")
    print(f"{hf_dir}: {tf1.describe_sizes(opened.config)}")
    return _save(opened, output_dir)


def _prepare_output_dir(output_dir: str, overwrite: bool, refuse_checkpoint: bool = True) -> None:
    """Creates output_dir; refuses one that holds a checkpoint unless `overwrite`. A filesystem
    that cannot be reached (no credentials, a bucket that does not exist) is a UserError."""
    try:
        latest = tf.train.latest_checkpoint(output_dir) if refuse_checkpoint else None
        if latest and not overwrite:
            raise UserError(f"--output_dir={output_dir} already holds a checkpoint; pass "
                            "--overwrite to replace it")
        tf.io.gfile.makedirs(output_dir)
    except tf.errors.OpError as e:
        raise UserError(f"--output_dir={output_dir}: {io.first_line(e)}") from None


def _save(opened, output_dir: str) -> str:
    # Written into a hidden directory inside output_dir and moved in, data before index and the
    # `checkpoint` state file last, so output_dir never offers half a checkpoint.
    with io.staging_directory(output_dir, "convert") as staging:
        saved = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=opened.model), staging, max_to_keep=1).save(
                checkpoint_number=0)
        opened.config.save(io.join(staging, CONFIG_FILE))
        name = io.basename(saved)
        io.move_files(staging, output_dir, last=(CONFIG_FILE, f"{name}.index", "checkpoint"))
    return io.join(output_dir, name)


def convert_to_tf1(checkpoint: str, output_dir: str, overwrite: bool = False) -> str:
    """This project's checkpoint -> TF1-named checkpoint (model.ckpt) in output_dir."""
    values = tf1.model_tf1_values(checkpoint_io.open_checkpoint(checkpoint).model)
    # write_tf1_checkpoint refuses an existing TF1 checkpoint itself.
    _prepare_output_dir(output_dir, overwrite, refuse_checkpoint=False)
    return tf1.write_tf1_checkpoint(values, output_dir, overwrite=overwrite)


def convert_to_hf(checkpoint: str, output_dir: str, vocab_file: str | None = None,
                  overwrite: bool = False) -> list[str]:
    """This project's checkpoint -> HF directories (discriminator/, generator/) in output_dir."""
    opened = checkpoint_io.open_checkpoint(checkpoint)
    if vocab_file:
        size = len(load_vocab(vocab_file))
        if size != opened.config.vocab_size:
            raise UserError(f"--vocab_file={vocab_file} has {size} tokens, but the model's "
                                f"vocab_size is {opened.config.vocab_size}")
    values = {name: np.asarray(v) for name, v in tf1.model_tf1_values(opened.model).items()}
    exported = hf.export_values(opened.config, values)
    targets = {name: io.join(output_dir, name) for name in exported}
    existing = [t for t in targets.values()
                if tf.io.gfile.exists(io.join(t, hf.SAFETENSORS_FILE))]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already holds {hf.SAFETENSORS_FILE}; pass "
                            "--overwrite to replace it")
    _prepare_output_dir(output_dir, overwrite, refuse_checkpoint=False)
    for name, (config, tensors) in exported.items():
        hf.write_hf_dir(targets[name], config, tensors, vocab_file, overwrite=True)
        print(f"{targets[name]}: {config['architectures'][0]}, {len(tensors)} tensors")
    return list(targets.values())
