"""Flags of ELECTRA pre-training (run_pretraining.py), with the recipe's Small defaults.

Importing this module defines the flags, one per `PretrainOptions` field, its default taken from
there; `options_from_flags` builds the run's options from the parsed flags, once. Only the
pre-training entry script imports it, so the fine-tuning flags never clash with these. Presets
for Small / Base / Large / demo live in configs/*.flags; any flag given after --flagfile
overrides the file.
"""

import dataclasses

from absl import flags

from electra_tf.config import PRESETS
from electra_tf.pretraining.options import PretrainOptions
from electra_tf.training import runtime_flags
from electra_tf.training.optimization import OPTIMIZERS

FLAGS = flags.FLAGS
D = PretrainOptions  # the defaults

# Data and directories.
flags.DEFINE_string("train_files", None, "Comma-separated globs of the training TFRecord shards "
                    "(pretrain_data.tfrecord-*; written by build_pretraining_dataset.py). "
                    "model_dir/input_stream.json records them (names, sizes, max_seq_length): "
                    "a resumed run on the same files continues the checkpoint's input stream; "
                    "on other files it says so in one line and the stream restarts from them.")
flags.DEFINE_string("eval_files", D.eval_files,
                    "Comma-separated globs of HELD-OUT shards for evaluation (never the training "
                    "shards); empty turns evaluation off.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, config.json, TensorBoard logs "
                    "(train/, eval/) and eval_results.json; a run with the same directory "
                    "resumes from its latest checkpoint.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt the shards were built with: gives "
                    "the vocab size, the special token ids and the text summary's words.")
flags.DEFINE_string("init_checkpoint", D.init_checkpoint,
                    "Checkpoint prefix or model_dir to take the model weights from (no optimizer "
                    "state) when model_dir has no checkpoint yet: continues pre-training from "
                    "another run.")

# Model size and objective (None: the --model_size preset's value).
flags.DEFINE_enum("model_size", D.model_size, list(PRESETS),
                  "Preset of sizes from the recipe's table.")
for _name, _kind, _help in (
        ("embedding_size", "integer", "Embedding width E (projected to hidden_size when it "
                                      "differs)."),
        ("hidden_size", "integer", "Discriminator hidden width H."),
        ("num_hidden_layers", "integer", "Transformer layers L (discriminator)."),
        ("num_attention_heads", "integer", "Attention heads of the discriminator."),
        ("intermediate_size", "integer", "Feed-forward width of the discriminator."),
        ("hidden_dropout_prob", "float", "Dropout on hidden states (recipe: 0.1)."),
        ("attention_probs_dropout_prob", "float", "Dropout on attention probabilities (0.1)."),
        ("generator_hidden_size", "float", "Generator width as a fraction of hidden_size."),
        ("generator_layers", "float", "Generator depth as a fraction of num_hidden_layers."),
        ("max_seq_length", "integer", "Sequence length; must match the shards."),
        ("mask_prob", "float", "Fraction of real tokens masked (0.15; 0.25 for Large)."),
        ("gen_weight", "float", "Weight of the generator's masked-LM loss (1.0)."),
        ("disc_weight", "float", "Weight of the discriminator's loss (50.0)."),
        ("temperature", "float", "Sampling temperature of the generator (1.0)."),
):
    getattr(flags, f"DEFINE_{_kind}")(_name, None, _help + " Default: the preset's value.")

# Optimization.
flags.DEFINE_integer("train_batch_size", D.train_batch_size,
                     "GLOBAL batch size (all replicas together).")
flags.DEFINE_integer("eval_batch_size", D.eval_batch_size,
                     "Global evaluation batch size (0: train_batch_size).")
flags.DEFINE_integer("num_train_steps", D.num_train_steps, "Optimizer steps to train for.")
flags.DEFINE_float("learning_rate", D.learning_rate,
                   "Peak learning rate (linear warmup, then linear decay to zero at "
                   "num_train_steps).")
flags.DEFINE_integer("num_warmup_steps", D.num_warmup_steps,
                     "Steps of linear learning-rate warmup.")
flags.DEFINE_float("weight_decay", D.weight_decay,
                   "Decoupled weight decay (not on LayerNorm and biases).")
flags.DEFINE_enum("optimizer", D.optimizer, list(OPTIMIZERS), "adamw: the recipe's AdamW without "
                  "bias correction; lamb: for very large batches.")
flags.DEFINE_integer("grad_accum_steps", D.grad_accum_steps,
                     "Micro-batches per optimizer step: each holds train_batch_size / "
                     "grad_accum_steps examples; gradients are averaged.")
flags.DEFINE_integer("seed", D.seed,
                     "Seed of weight init, data order, masking, sampling and dropout.")
flags.DEFINE_boolean("deterministic", D.deterministic,
                     "Deterministic ops (slower): with the same flags a run, also one killed and "
                     "resumed, ends with bit-identical weights.")

# Devices, speed and checkpoints.
runtime_flags.define(D, keep_checkpoint_help="Checkpoints kept in model_dir (0: all).")
flags.DEFINE_integer("steps_per_loop", D.steps_per_loop,
                     "Training steps per tf.function call (and per progress line and TensorBoard "
                     "point).")

# Evaluation.
flags.DEFINE_integer("eval_every_steps", D.eval_every_steps,
                     "Evaluate on --eval_files every this many steps (0: only at the start and "
                     "the end).")
flags.DEFINE_integer("num_eval_steps", D.num_eval_steps,
                     "Batches per evaluation (the same batches each time; the held-out stream "
                     "repeats if shorter).")

flags.mark_flags_as_required(["train_files", "model_dir", "vocab_file"])


def options_from_flags(values=FLAGS) -> PretrainOptions:
    """The run's options from the parsed flags, validated (UserError naming the flag)."""
    options = PretrainOptions(**{f.name: values[f.name].value
                                 for f in dataclasses.fields(PretrainOptions)})
    options.validate()
    return options
