"""ELECTRA pre-training as an application: shards -> ElectraPretrainer -> Trainer
(docs/RECIPE.md steps 1-6).

`run(options)` creates the strategy first (multi-worker collectives must be configured before
any TensorFlow op), checks the inputs the `PretrainOptions` name (vocabulary, shards, held-out
shards), builds the architecture and the objective from `--model_size` plus overrides, the
recipe's optimizer (AdamW without bias correction, linear warmup and decay; the Trainer clips at
1.0), the input pipelines and the strategy, then trains, evaluates on held-out shards and prints
what the run learned (held-out metrics at the start and at the end). model_dir keeps the
architecture in config.json (a checkpoint of another one is refused) and the objective the run
trained with in objective.json, and the training shards the input stream reads in
input_stream.json (a resume on other shards restarts the stream; training/checkpoints.py).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoint_io, data, io
from electra_tf.cli import UserError
from electra_tf.config import OBJECTIVE_FILE, ModelConfig, ObjectiveConfig
from electra_tf.pretraining.objective import ElectraPretrainer
from electra_tf.pretraining.options import PretrainOptions
from electra_tf.training import distribute, loop, optimization, results

# Shown first in the closing summary: what the recipe reports during pre-training eval.
HEADLINE_METRICS = ("masked_lm_accuracy", "masked_lm_loss", "disc_auc", "disc_accuracy",
                    "loss")


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What the options name, opened and checked."""

    vocab: list
    train_files: list
    eval_files: list
    model: ModelConfig
    objective: ObjectiveConfig




def _check_vocab_matches_shards(vocab_file: str, files: list) -> None:
    info = data.read_dataset_info(files)
    expected = info.get("vocab_sha256")
    if expected and expected != io.sha256_file(vocab_file):
        raise UserError(f"--vocab_file={vocab_file} is not the vocabulary the shards in "
                        f"{io.dirname(files[0])} were built with (vocab_sha256 differs)")


def open_inputs(options: PretrainOptions) -> _Inputs:
    """Reads the vocabulary and checks the shards against it and against the sizes."""
    from electra_tf.tokenization import load_vocab  # the one definition of a valid vocab

    options.validate()
    # The filesystems of the output and of the checkpoint are reachable before the model is built.
    io.checked(tf.io.gfile.exists, options.model_dir, "--model_dir")
    if options.init_checkpoint:
        io.checked(lambda path: tf.io.gfile.glob(path + "*"), options.init_checkpoint,
                   "--init_checkpoint")
    vocab = load_vocab(options.vocab_file)
    train_files = data.expand_file_patterns(options.train_files, "--train_files")
    _check_vocab_matches_shards(options.vocab_file, train_files)
    eval_files = (data.expand_file_patterns(options.eval_files, "--eval_files")
                  if options.eval_files else [])
    overlap = sorted(set(train_files) & set(eval_files))
    if overlap:
        raise UserError(f"--eval_files must be held out, but {overlap[0]} is also a training "
                        "shard")
    model = options.model_config(len(vocab))
    objective = options.objective_config()
    for files in (train_files, eval_files):
        if files:
            data.check_shards(files, objective.max_seq_length)
    return _Inputs(vocab, train_files, eval_files, model, objective)


def format_example(vocab: list, original_ids, masked_ids, sampled_ids, disc_probs,
                   input_mask) -> str:
    """Markdown table of one example: original / masked / generator sample / discriminator.

    A position is shown bold in the sample row when the generator replaced the token, and the
    discriminator's verdict is "fake" where its probability of "replaced" exceeds 0.5.
    """
    length = int(np.sum(input_mask))

    def decode(ids) -> list:
        return [vocab[i] if 0 <= i < len(vocab) else f"<{i}>" for i in np.asarray(ids)[:length]]

    original, masked, sampled = decode(original_ids), decode(masked_ids), decode(sampled_ids)
    probs = np.asarray(disc_probs, dtype=np.float64)[:length]
    sample_cells = [f"**{s}**" if s != o else s for s, o in zip(sampled, original)]
    verdicts = [f"{'fake' if p > 0.5 else 'real'} {p:.2f}" for p in probs]
    rows = [("original", original), ("masked", masked), ("generator sample", sample_cells),
            ("discriminator", verdicts)]
    header = "| position | " + " | ".join(name for name, _ in rows) + " |"
    lines = [header, "|" + "---|" * (len(rows) + 1)]
    for i in range(length):
        cells = [str(i)] + [values[i].replace("|", "\\|") for _, values in rows]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_trainer(options: PretrainOptions, inputs: _Inputs, strategy) -> loop.Trainer:
    """The Trainer of the run; sets the process-wide seed and dtype policy first."""
    vocab, seq = inputs.vocab, inputs.objective.max_seq_length
    special = {token: vocab.index(token) for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}

    def model_fn():
        return ElectraPretrainer(inputs.model, inputs.objective, seed=options.seed,
                                 pad_id=special["[PAD]"], mask_id=special["[MASK]"],
                                 cls_id=special["[CLS]"], sep_id=special["[SEP]"])

    def optimizer_fn():
        try:
            return optimization.create_optimizer(
                options.optimizer, options.learning_rate, options.num_train_steps,
                options.num_warmup_steps, weight_decay=options.weight_decay)
        except ValueError as e:
            raise UserError(f"optimizer flags: {e}") from None

    def train_input(batch_size, context, start_batch):
        return data.pretraining_dataset(inputs.train_files, batch_size, seq, is_training=True,
                                        seed=options.seed, input_context=context,
                                        start_batch=start_batch)

    def eval_input(batch_size, context):
        return data.pretraining_dataset(inputs.eval_files, batch_size, seq, is_training=False,
                                        seed=options.seed, input_context=context)

    def init_fn(model):
        checkpoint_io.restore_weights(model, options.init_checkpoint)

    def example_summary(sample):
        return format_example(vocab, sample["input_ids"], sample["masked_input_ids"],
                              sample["sampled_ids"], sample["disc_probs"], sample["input_mask"])

    # Seeds weight initialization and (with their op seeds) the input pipelines' shuffles: the
    # same options give the same model and data order on any strategy. The Trainer creates the
    # input pipelines, then the model, right after this, as the random streams expect.
    keras.utils.set_random_seed(options.seed)
    keras.mixed_precision.set_global_policy(options.mixed_precision)
    return loop.Trainer(
        strategy=strategy, model_fn=model_fn, optimizer_fn=optimizer_fn,
        train_input_fn=train_input, eval_input_fn=eval_input if inputs.eval_files else None,
        model_dir=options.model_dir, train_batch_size=options.train_batch_size,
        eval_batch_size=options.eval_batch_size, seed=options.seed,
        grad_accum_steps=options.grad_accum_steps, steps_per_loop=options.steps_per_loop,
        jit_compile=options.jit_compile, mixed_precision=options.mixed_precision,
        clip_norm=1.0, save_checkpoints_steps=options.save_checkpoints_steps,
        keep_checkpoint_max=options.keep_checkpoint_max,
        init_fn=init_fn if options.init_checkpoint else None,
        example_summary_fn=example_summary,
        input_description=data.describe_input(inputs.train_files, seq))


def run(options: PretrainOptions) -> loop.TrainResult:
    """Pre-trains as the options say; returns the TrainResult (UserError on bad input)."""
    options.validate()
    # The strategy first, before any TensorFlow op (open_inputs reads the shards):
    # multi_worker_mirrored can configure collective ops only at program startup.
    strategy = distribute.create_strategy(options.strategy, options.tpu, options.cpu_devices,
                                          options.collective_timeout_seconds)
    if options.deterministic:
        tf.config.experimental.enable_op_determinism()
    inputs = open_inputs(options)
    chief = distribute.is_chief(strategy)
    checkpoint_io.ensure_model_config(options.model_dir, inputs.model, write=chief)
    if chief:
        io.write_json(io.join(options.model_dir, OBJECTIVE_FILE), inputs.objective.to_dict())
    trainer = build_trainer(options, inputs, strategy)
    try:
        with distribute.exit_at_once_if_a_worker_is_lost():
            result = trainer.train(options.num_train_steps,
                                   eval_every_steps=options.eval_every_steps,
                                   num_eval_steps=options.num_eval_steps)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        if "record" not in str(e) and "parse" not in str(e).lower():
            raise
        raise data.corrupt_file_error(inputs.train_files + inputs.eval_files,
                                      inputs.objective.max_seq_length, e) from None
    if chief:
        print(closing_summary(options.model_dir, result))
    return result


def closing_summary(model_dir: str, result: loop.TrainResult) -> str:
    """What the run learned: held-out metrics at its first and last evaluation."""
    lines = [f"trained to step {result.step}"
             + (" (stopped by SIGTERM; rerun to resume)" if result.stopped_by_signal else "")]
    history = results.read_history(model_dir)
    if history:
        first, last = history[0], history[-1]
        names = [n for n in HEADLINE_METRICS if n in last]
        names += sorted(n for n in last if n not in names and n != "step")
        lines.append(f"held-out metrics   step {first['step']:>8} -> step {last['step']:>8}")
        for name in names:
            lines.append(f"  {name:<28} {first.get(name, float('nan')):>10.4f} -> "
                         f"{last[name]:>10.4f}")
        lines.append(f"eval results: {io.join(model_dir, results.EVAL_RESULTS_FILE)}")
    lines.append(f"TensorBoard: tensorboard --logdir {model_dir}")
    return "\n".join(lines)
