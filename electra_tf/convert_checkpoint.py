"""Converts between the original ELECTRA TF1 checkpoint layout and this project's checkpoints
(docs/RECIPE.md "Checkpoint variable names of the released TF1 checkpoints").

    python -m electra_tf.convert_checkpoint --tf1_checkpoint=PREFIX --output_dir=DIR
    python -m electra_tf.convert_checkpoint --to_tf1 --checkpoint=DIR_OR_PREFIX --output_dir=DIR

TF1 -> ours: the sizes (hidden, layers, embedding size, generator width and depth, vocabulary) are
inferred from the variable shapes, so the released electra_small (Small++, full-size generator),
electra_base and electra_large convert without flags. Generator, discriminator and both heads
are imported; `global_step` and Adam slots are not, so continued pre-training from DIR starts at
step 0 with fresh optimizer state. DIR receives an ElectraPretrainer checkpoint and config.json,
usable as --init_checkpoint and --checkpoint everywhere.

Ours -> TF1: any checkpoint of this project (pre-training or fine-tuning; task heads have no TF1
name and are left out) is written under the reference's variable names (model.ckpt + the
`checkpoint` file), for the reference code and the ecosystem's converters.
"""

import os
import shutil
import tempfile

import tensorflow as tf
from absl import flags

from electra_tf import checkpoint_io, cli
from electra_tf.checkpoint_io import tf1
from electra_tf.config import CONFIG_FILE

FLAGS = flags.FLAGS
flags.DEFINE_string("tf1_checkpoint", None,
                    "TF1 checkpoint prefix (e.g. electra_small/electra_small) or a directory "
                    "holding one, to convert into this project's format.")
flags.DEFINE_bool("to_tf1", False,
                  "Convert the other way: --checkpoint (this project's) -> TF1 names.")
flags.DEFINE_string("checkpoint", None,
                    "With --to_tf1: this project's model directory (latest checkpoint) or "
                    "checkpoint prefix.")
flags.DEFINE_string("output_dir", None, "Directory to write the converted checkpoint into.")
flags.DEFINE_bool("overwrite", False, "Replace a checkpoint already in --output_dir.")


def convert_from_tf1(tf1_path: str, output_dir: str, overwrite: bool = False) -> str:
    """TF1 checkpoint -> ElectraPretrainer checkpoint + config.json in output_dir."""
    prefix = checkpoint_io.resolve_prefix(tf1_path, "--tf1_checkpoint")
    if checkpoint_io.identify(prefix) != checkpoint_io.TF1:
        raise cli.UserError(f"--tf1_checkpoint={tf1_path}: not a TF1 ELECTRA checkpoint (no "
                            f"{tf1.WORD_EMBEDDINGS}); for this project's checkpoints "
                            "use --to_tf1 --checkpoint")
    if tf.train.latest_checkpoint(output_dir) and not overwrite:
        raise cli.UserError(f"--output_dir={output_dir} already holds a checkpoint; pass "
                            "--overwrite to replace it")
    opened = checkpoint_io.open_checkpoint(prefix, "--tf1_checkpoint")
    print(f"{prefix}: {tf1.describe_sizes(opened.config)}")
    os.makedirs(output_dir, exist_ok=True)
    # Written beside the output first and moved in, so output_dir never holds half a checkpoint.
    staging = tempfile.mkdtemp(prefix=".convert-", dir=output_dir)
    try:
        saved = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=opened.model), staging, max_to_keep=1).save(
                checkpoint_number=0)
        opened.config.save(os.path.join(staging, CONFIG_FILE))
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return os.path.join(output_dir, os.path.basename(saved))


def convert_to_tf1(checkpoint: str, output_dir: str, overwrite: bool = False) -> str:
    """This project's checkpoint -> TF1-named checkpoint (model.ckpt) in output_dir."""
    values = tf1.model_tf1_values(checkpoint_io.open_checkpoint(checkpoint).model)
    return tf1.write_tf1_checkpoint(values, output_dir, overwrite=overwrite)


def main(argv):
    del argv
    if not FLAGS.output_dir:
        raise cli.UserError("--output_dir is required")
    if FLAGS.to_tf1:
        if not FLAGS.checkpoint:
            raise cli.UserError("--to_tf1 needs --checkpoint (this project's checkpoint)")
        prefix = convert_to_tf1(FLAGS.checkpoint, FLAGS.output_dir, FLAGS.overwrite)
    else:
        if not FLAGS.tf1_checkpoint:
            raise cli.UserError("--tf1_checkpoint is required (or --to_tf1 --checkpoint=...)")
        prefix = convert_from_tf1(FLAGS.tf1_checkpoint, FLAGS.output_dir, FLAGS.overwrite)
    print(f"wrote {prefix}")


if __name__ == "__main__":
    cli.run(main)
