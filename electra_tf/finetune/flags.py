"""Command-line flags of the fine-tuning stage (run_finetuning.py), with the recipe's defaults.

Unset optimization flags take the recipe's fine-tuning values for the model size: lr 1e-4
(5e-5 for large), layer-wise lr decay 0.8 (0.9 for large), 3 epochs (10 for RTE and STS-B);
weight decay 0.01, warmup 10%, batch 32 and sequence length 128 are the flag defaults.
"""

from absl import flags

from electra_tf.config import PRESETS
from electra_tf.training import runtime_flags

# The recipe's per-size fine-tuning values used when the flag is left unset.
RECIPE_LEARNING_RATE = {"large": 5e-5}
RECIPE_LAYERWISE_DECAY = {"large": 0.9}
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_LAYERWISE_DECAY = 0.8

# Task and data.
flags.DEFINE_string("task", None, "Task to fine-tune: a GLUE task (cola, sst2, mrpc, stsb, qqp, "
                    "mnli, qnli, rte), classification, regression or tagging.")
flags.DEFINE_string("data_dir", None, "GLUE tasks: directory of the original GLUE TSV files (the "
                    "task's directory, e.g. glue_data/RTE, or glue_data itself). Unset: read "
                    "TFDS glue/<task>.")
flags.DEFINE_string("tfds_data_dir", None, "GLUE tasks without --data_dir: TFDS data directory.")
flags.DEFINE_string("train_file", None, "classification/regression: TSV or CSV file with a header "
                    "line; tagging: CoNLL file.")
flags.DEFINE_string("dev_file", None, "Evaluation file, same format as --train_file.")
flags.DEFINE_string("test_file", None, "File to predict (labels optional), same format.")
flags.DEFINE_string("text_column", "text", "Column with the (first) text.")
flags.DEFINE_string("text_b_column", None, "Column with the second text of a pair (optional).")
flags.DEFINE_string("label_column", "label", "Column with the label (a number for regression).")
flags.DEFINE_integer("token_column", 0, "tagging: CoNLL column of the word (from 0; negative "
                     "counts from the end).")
flags.DEFINE_integer("tag_column", -1, "tagging: CoNLL column of the tag (from 0; negative "
                     "counts from the end).")

# Model and tokenizer.
flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary of the pre-trained model.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case (and strip accents from) the text, as for "
                  "the uncased vocabulary.")
flags.DEFINE_string("init_checkpoint", None, "Pre-trained model: a model_dir of "
                    "run_pretraining.py (or of an imported checkpoint) or a checkpoint prefix. "
                    "Its config.json gives the model sizes. Unset: random initialization.")
flags.DEFINE_enum("model_size", "small", list(PRESETS), "Model sizes when --init_checkpoint has "
                  "no config.json or is unset; also selects the recipe's lr and decay defaults.")
flags.DEFINE_string("config_file", None, "config.json (ElectraConfig) with the model sizes, e.g. "
                    "to train the architecture of a pre-trained model from random init; "
                    "overrides --model_size and must match --init_checkpoint.")
flags.DEFINE_string("model_dir", None, "Where checkpoints, results JSON, TensorBoard summaries "
                    "and predictions go. An existing fine-tuning model_dir is resumed.")

# Optimization (the recipe's fine-tuning settings).
flags.DEFINE_float("learning_rate", None, "Peak learning rate (unset: 1e-4, 5e-5 for large).")
flags.DEFINE_float("layerwise_lr_decay", None, "Layer-wise lr decay (unset: 0.8, 0.9 for "
                   "large); 1 disables it.")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm and biases).")
flags.DEFINE_float("num_train_epochs", None, "Epochs over the training data (unset: 3, 10 for "
                   "rte and stsb).")
flags.DEFINE_integer("max_train_steps", None, "At most this many training steps (the schedule "
                     "then spans them instead of the epochs).")
flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of the training steps with linear warmup.")
flags.DEFINE_integer("train_batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 128, "Global evaluation/prediction batch size.")
flags.DEFINE_integer("max_seq_length", None, "WordPieces per example, [CLS] and [SEP] included "
                     "(unset: 512 for squad/squadv1, 128 for the other tasks).")

# Runs.
flags.DEFINE_bool("do_train", True, "Fine-tune on the training split.")
flags.DEFINE_bool("do_eval", True, "Evaluate on the dev split(s) after training.")
flags.DEFINE_bool("do_predict", False, "Write predictions for the test split(s).")
flags.DEFINE_integer("num_trials", 1, "Independent fine-tuning runs (seeds seed, seed+1, ...), "
                     "each in model_dir/trial_<k>; the mean and best are reported.")
flags.DEFINE_integer("seed", 1, "Random seed: initialization of the head, data order, dropout.")
flags.DEFINE_integer("eval_every_epochs", 0, "Also evaluate after every this many epochs "
                     "(0: only at the end).")

# Machinery shared with pre-training.
runtime_flags.define(keep_checkpoint_max=1,
                     keep_checkpoint_help="Checkpoints kept per trial (0: all).")
flags.DEFINE_integer("log_every_steps", 50, "Progress and TensorBoard train summaries every this "
                     "many steps.")

# SQuAD (--task=squad / squadv1): the recipe's QA settings.
flags.DEFINE_integer("doc_stride", 128, "squad: context pieces between the starts of "
                     "consecutive windows over a long context.")
flags.DEFINE_integer("max_query_length", 64, "squad: question pieces kept (the rest is cut).")
flags.DEFINE_integer("n_best_size", 20, "squad: candidate spans kept per question (n-best list).")
flags.DEFINE_integer("max_answer_length", 30, "squad: longest answer span, in WordPieces.")

flags.DEFINE_bool("list_tasks", False, "Print the tasks with a one-line description and exit.")
