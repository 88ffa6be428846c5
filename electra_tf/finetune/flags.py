"""Command-line flags of the fine-tuning stage (run_finetuning.py), with the recipe's defaults.

One flag per `FinetuneOptions` field, its default taken from there (options.py explains the
recipe's values); `options_from_flags` builds the run's options from the parsed flags, once.
Unset optimization flags take the recipe's fine-tuning values for the model size: lr 1e-4
(5e-5 for large), layer-wise lr decay 0.8 (0.9 for large), 3 epochs (10 for RTE and STS-B).
"""

import dataclasses

from absl import flags

from electra_tf.config import PRESETS
from electra_tf.finetune import options as options_lib
from electra_tf.training import runtime_flags

D = options_lib.FinetuneOptions  # the defaults

# Task and data.
flags.DEFINE_string(
    "task", D.task,
    "Task to fine-tune: a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte), "
    "classification, regression, tagging, chunking (tagging at length 256), squad (2.0) or "
    "squadv1; --list_tasks describes them.")
flags.DEFINE_string(
    "data_dir", D.data_dir,
    "GLUE tasks: directory of the original GLUE TSV files (the task's directory, e.g. "
    "glue_data/RTE, or glue_data itself). Unset: read TFDS glue/<task>.")
flags.DEFINE_string(
    "tfds_data_dir", D.tfds_data_dir, "GLUE tasks without --data_dir: TFDS data directory.")
flags.DEFINE_string(
    "train_file", D.train_file,
    "classification/regression: TSV or CSV file with a header line; tagging: CoNLL file.")
flags.DEFINE_string("dev_file", D.dev_file, "Evaluation file, same format as --train_file.")
flags.DEFINE_string("test_file", D.test_file, "File to predict (labels optional), same format.")
flags.DEFINE_string("text_column", D.text_column, "Column with the (first) text.")
flags.DEFINE_string(
    "text_b_column", D.text_b_column, "Column with the second text of a pair (optional).")
flags.DEFINE_string(
    "label_column", D.label_column, "Column with the label (a number for regression).")
flags.DEFINE_integer(
    "token_column", D.token_column,
    "tagging: CoNLL column of the word (from 0; negative counts from the end).")
flags.DEFINE_integer(
    "tag_column", D.tag_column,
    "tagging: CoNLL column of the tag (from 0; negative counts from the end).")

# Model and tokenizer.
flags.DEFINE_string("vocab_file", D.vocab_file, "WordPiece vocabulary of the pre-trained model.")
flags.DEFINE_bool(
    "do_lower_case", D.do_lower_case,
    "Lower-case (and strip accents from) the text, as for the uncased vocabulary.")
flags.DEFINE_string(
    "init_checkpoint", D.init_checkpoint,
    "Pre-trained model: a model_dir of run_pretraining.py (or of an imported checkpoint) or a "
    "checkpoint prefix. Its config.json gives the model sizes. Unset: random initialization.")
flags.DEFINE_enum(
    "model_size", D.model_size, list(PRESETS),
    "Model sizes when --init_checkpoint has no config.json or is unset; also selects the "
    "recipe's lr and decay defaults.")
flags.DEFINE_string(
    "config_file", D.config_file,
    "config.json (ModelConfig) with the model sizes, e.g. to train the architecture of a "
    "pre-trained model from random init; overrides --model_size and must match "
    "--init_checkpoint.")
flags.DEFINE_string(
    "model_dir", D.model_dir,
    "Where checkpoints, results JSON, TensorBoard summaries and predictions go. An existing "
    "fine-tuning model_dir is resumed.")

# Optimization (the recipe's fine-tuning settings).
flags.DEFINE_float(
    "learning_rate", D.learning_rate, "Peak learning rate (unset: 1e-4, 5e-5 for large).")
flags.DEFINE_float(
    "layerwise_lr_decay", D.layerwise_lr_decay,
    "Layer-wise lr decay (unset: 0.8, 0.9 for large); 1 disables it.")
flags.DEFINE_float(
    "weight_decay", D.weight_decay, "Decoupled weight decay (not on LayerNorm and biases).")
flags.DEFINE_float(
    "num_train_epochs", D.num_train_epochs,
    "Epochs over the training data (unset: 3, 10 for rte and stsb).")
flags.DEFINE_integer(
    "max_train_steps", D.max_train_steps,
    "At most this many training steps (the schedule then spans them instead of the epochs).")
flags.DEFINE_float(
    "warmup_proportion", D.warmup_proportion, "Fraction of the training steps with linear warmup.")
flags.DEFINE_integer("train_batch_size", D.train_batch_size, "Global training batch size.")
flags.DEFINE_integer(
    "eval_batch_size", D.eval_batch_size, "Global evaluation/prediction batch size.")
flags.DEFINE_integer(
    "max_seq_length", D.max_seq_length,
    "WordPieces per example, [CLS] and [SEP] included (unset: 512 for squad/squadv1, 256 for "
    "chunking, 128 for the other tasks).")

# Runs.
flags.DEFINE_bool("do_train", D.do_train, "Fine-tune on the training split.")
flags.DEFINE_bool("do_eval", D.do_eval, "Evaluate on the dev split(s) after training.")
flags.DEFINE_bool("do_predict", D.do_predict, "Write predictions for the test split(s).")
flags.DEFINE_integer(
    "num_trials", D.num_trials,
    "Independent fine-tuning runs (seeds seed, seed+1, ...), each in model_dir/trial_<k>; the "
    "mean and best are reported.")
flags.DEFINE_integer(
    "seed", D.seed, "Random seed: initialization of the head, data order, dropout.")
flags.DEFINE_integer(
    "eval_every_epochs", D.eval_every_epochs,
    "Also evaluate after every this many epochs (0: only at the end).")

# Machinery shared with pre-training.
runtime_flags.define(D, keep_checkpoint_help="Checkpoints kept per trial (0: all).")
flags.DEFINE_integer(
    "log_every_steps", D.log_every_steps,
    "Progress and TensorBoard train summaries every this many steps.")

# SQuAD (--task=squad / squadv1): the recipe's QA settings.
flags.DEFINE_integer(
    "doc_stride", D.doc_stride,
    "squad: context pieces between the starts of consecutive windows over a long context.")
flags.DEFINE_integer(
    "max_query_length", D.max_query_length, "squad: question pieces kept (the rest is cut).")
flags.DEFINE_integer(
    "n_best_size", D.n_best_size, "squad: candidate spans kept per question (n-best list).")
flags.DEFINE_integer(
    "max_answer_length", D.max_answer_length, "squad: longest answer span, in WordPieces.")

flags.DEFINE_bool("list_tasks", False, "Print the tasks with a one-line description and exit.")


def options_from_flags(flag_values=flags.FLAGS, **overrides) -> options_lib.FinetuneOptions:
    """The validated FinetuneOptions of the parsed flags, `overrides` (field names) on top."""
    values = {field.name: flag_values[field.name].value
              for field in dataclasses.fields(options_lib.FinetuneOptions)}
    return options_lib.build(**{**values, **overrides})
