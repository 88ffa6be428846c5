"""Converts between the original ELECTRA TF1 checkpoint layout, Hugging Face model directories
and this project's checkpoints (docs/RECIPE.md "Checkpoint variable names of the released TF1
checkpoints"; checkpoint_io/hf.py for the HF names).

    python -m electra_tf.convert_checkpoint --tf1_checkpoint=PREFIX --output_dir=DIR
    python -m electra_tf.convert_checkpoint --to_tf1 --checkpoint=DIR_OR_PREFIX --output_dir=DIR
    python -m electra_tf.convert_checkpoint --hf_dir=HF_DIR[,HF_GENERATOR_DIR] --output_dir=DIR
    python -m electra_tf.convert_checkpoint --to_hf --checkpoint=DIR_OR_PREFIX --output_dir=DIR

HF -> ours: an ElectraForPreTraining directory (discriminator + head), with an
ElectraForMaskedLM directory after a comma for the generator + head, or an encoder only
(ElectraModel, BertModel, BertForMaskedLM: the heads and the generator are freshly initialized).

Ours -> HF: DIR/discriminator (ElectraForPreTraining; ElectraModel for a fine-tuned model, whose
task head has no HF name) and, for a pre-training model, DIR/generator (ElectraForMaskedLM),
each config.json + model.safetensors, with --vocab_file copied in as vocab.txt when given.

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

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
from absl import flags

from electra_tf.checkpoint_io import convert

FLAGS = flags.FLAGS
flags.DEFINE_string("tf1_checkpoint", None,
                    "TF1 checkpoint prefix (e.g. electra_small/electra_small) or a directory "
                    "holding one, to convert into this project's format.")
flags.DEFINE_bool("to_tf1", False,
                  "Convert the other way: --checkpoint (this project's) -> TF1 names.")
flags.DEFINE_string("checkpoint", None,
                    "With --to_tf1: this project's model directory (latest checkpoint) or "
                    "checkpoint prefix.")
flags.DEFINE_string("hf_dir", None,
                    "Hugging Face model directory (config.json + model.safetensors or "
                    "tf_model.h5) to convert into this project's format; "
                    "DISC_DIR,GEN_DIR imports an ElectraForPreTraining and an "
                    "ElectraForMaskedLM together.")
flags.DEFINE_bool("to_hf", False,
                  "Convert --checkpoint (this project's) -> HF directories discriminator/ and "
                  "generator/ in --output_dir.")
flags.DEFINE_string("vocab_file", None, "With --to_hf: vocab.txt to copy beside the weights "
                    "(its size must be the model's vocab_size).")
flags.DEFINE_string("output_dir", None, "Directory to write the converted checkpoint into.")
flags.DEFINE_bool("overwrite", False, "Replace a checkpoint already in --output_dir.")


def main(argv):
    del argv
    if not FLAGS.output_dir:
        raise cli.UserError("--output_dir is required")
    if FLAGS.to_hf:
        if not FLAGS.checkpoint:
            raise cli.UserError("--to_hf needs --checkpoint (this project's checkpoint)")
        convert.convert_to_hf(FLAGS.checkpoint, FLAGS.output_dir, FLAGS.vocab_file, FLAGS.overwrite)
        return
    if FLAGS.hf_dir:
        prefix = convert.convert_from_hf(FLAGS.hf_dir, FLAGS.output_dir, FLAGS.overwrite)
    elif FLAGS.to_tf1:
        if not FLAGS.checkpoint:
            raise cli.UserError("--to_tf1 needs --checkpoint (this project's checkpoint)")
        prefix = convert.convert_to_tf1(FLAGS.checkpoint, FLAGS.output_dir, FLAGS.overwrite)
    else:
        if not FLAGS.tf1_checkpoint:
            raise cli.UserError("--tf1_checkpoint or --hf_dir is required (or --to_tf1 / --to_hf "
                                "--checkpoint=...)")
        prefix = convert.convert_from_tf1(FLAGS.tf1_checkpoint, FLAGS.output_dir, FLAGS.overwrite)
    print(f"wrote {prefix}")


if __name__ == "__main__":
    cli.run(main)
