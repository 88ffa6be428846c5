"""ELECTRA pre-training from flags: shards -> ElectraPretrainer -> Trainer (RECIPE.md steps 1-6).

`run(FLAGS)` builds the config from `--model_size` plus overrides, the recipe's optimizer
(AdamW without bias correction, linear warmup and decay, clipping at 1.0 in the loop), the input
pipelines and the strategy, then trains, evaluates on held-out shards and prints the learning
the run shows (held-out metrics at the start and at the end).
"""

import hashlib
import json
import os

import tensorflow as tf

from electra_tf import config as config_lib
from electra_tf import data
from electra_tf.cli import UserError
from electra_tf.pretraining.objective import ElectraPretrainer
from electra_tf.training import distribute, loop, optimization, summaries
from electra_tf.training.flags import MODEL_OVERRIDES

# Shown first in the closing summary: what the recipe reports during pre-training eval.
HEADLINE_METRICS = ("masked_lm_accuracy", "masked_lm_loss", "disc_auc", "disc_accuracy",
                    "loss")


def build_config(flags_values, vocab_size: int) -> config_lib.ElectraConfig:
    overrides = {name: getattr(flags_values, name) for name in MODEL_OVERRIDES
                 if getattr(flags_values, name) is not None}
    try:
        config = config_lib.preset(flags_values.model_size, vocab_size=vocab_size, **overrides)
        config.validate()
    except ValueError as e:
        raise UserError(f"model flags: {e}") from None
    return config


def _file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_vocab_matches_shards(vocab_file: str, files: list) -> None:
    info = data.read_dataset_info(files)
    expected = info.get("vocab_sha256")
    if expected and expected != _file_sha256(vocab_file):
        raise UserError(f"--vocab_file={vocab_file} is not the vocabulary the shards in "
                        f"{os.path.dirname(files[0])} were built with (vocab_sha256 differs)")


def run(flags_values) -> loop.TrainResult:
    """Pre-trains as the flags say; returns the TrainResult (UserError on bad input)."""
    from data_prep.tokenization import load_vocab  # the one definition of a valid vocab

    f = flags_values
    vocab = load_vocab(f.vocab_file)
    train_files = data.expand_file_patterns(f.train_files, "--train_files")
    _check_vocab_matches_shards(f.vocab_file, train_files)
    eval_files = data.expand_file_patterns(f.eval_files, "--eval_files") if f.eval_files else []
    overlap = sorted(set(train_files) & set(eval_files))
    if overlap:
        raise UserError(f"--eval_files must be held out, but {overlap[0]} is also a training "
                        "shard")
    config = build_config(f, len(vocab))
    seq = config.max_seq_length
    data.check_shards(train_files, seq)
    if eval_files:
        data.check_shards(eval_files, seq)
    if f.deterministic:
        tf.config.experimental.enable_op_determinism()
    if f.num_train_steps <= 0:
        raise UserError(f"--num_train_steps={f.num_train_steps} must be positive")

    strategy = distribute.create_strategy(f.strategy, f.tpu, f.cpu_devices)
    special = {token: vocab.index(token) for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}

    def model_fn():
        return ElectraPretrainer(config, seed=f.seed, pad_id=special["[PAD]"],
                                 mask_id=special["[MASK]"], cls_id=special["[CLS]"],
                                 sep_id=special["[SEP]"])

    def optimizer_fn():
        try:
            return optimization.create_optimizer(
                f.optimizer, f.learning_rate, f.num_train_steps, f.num_warmup_steps,
                weight_decay=f.weight_decay, clip_norm=None, skip_gradients_aggregation=True)
        except ValueError as e:
            raise UserError(f"optimizer flags: {e}") from None

    def train_input(batch_size, context):
        return data.pretraining_dataset(train_files, batch_size, seq, is_training=True,
                                        seed=f.seed, input_context=context)

    def eval_input(batch_size, context):
        return data.pretraining_dataset(eval_files, batch_size, seq, is_training=False,
                                        seed=f.seed, input_context=context)

    def example_summary(sample):
        return summaries.format_pretraining_example(
            vocab, sample["input_ids"], sample["masked_input_ids"], sample["sampled_ids"],
            sample["disc_probs"], sample["input_mask"])

    trainer = loop.Trainer(
        strategy=strategy, model_fn=model_fn, optimizer_fn=optimizer_fn,
        train_input_fn=train_input, eval_input_fn=eval_input if eval_files else None,
        model_dir=f.model_dir, train_batch_size=f.train_batch_size,
        eval_batch_size=f.eval_batch_size, seed=f.seed, grad_accum_steps=f.grad_accum_steps,
        steps_per_loop=f.steps_per_loop, jit_compile=f.jit_compile,
        mixed_precision=f.mixed_precision, clip_norm=1.0,
        save_checkpoints_steps=f.save_checkpoints_steps,
        keep_checkpoint_max=f.keep_checkpoint_max, init_checkpoint=f.init_checkpoint,
        config=config.to_dict(), example_summary_fn=example_summary)
    try:
        result = trainer.train(f.num_train_steps, eval_every_steps=f.eval_every_steps,
                               num_eval_steps=f.num_eval_steps)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        if "record" not in str(e) and "parse" not in str(e).lower():
            raise
        raise data.corrupt_file_error(train_files + eval_files, seq, e) from None
    if distribute.is_chief(strategy):
        print(closing_summary(f.model_dir, result))
    return result


def closing_summary(model_dir: str, result: loop.TrainResult) -> str:
    """What the run learned: held-out metrics at its first and last evaluation."""
    lines = [f"trained to step {result.step}"
             + (" (stopped by SIGTERM; rerun to resume)" if result.stopped_by_signal else "")]
    path = os.path.join(model_dir, loop.EVAL_RESULTS_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as fh:
            history = json.load(fh)["history"]
        first, last = history[0], history[-1]
        names = [n for n in HEADLINE_METRICS if n in last]
        names += sorted(n for n in last if n not in names and n != "step")
        lines.append(f"held-out metrics   step {first['step']:>8} -> step {last['step']:>8}")
        for name in names:
            lines.append(f"  {name:<28} {first.get(name, float('nan')):>10.4f} -> "
                         f"{last[name]:>10.4f}")
        lines.append(f"eval results: {path}")
    lines.append(f"TensorBoard: tensorboard --logdir {model_dir}")
    return "\n".join(lines)
