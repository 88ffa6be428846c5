"""Fine-tuning runs of the ELECTRA recipe (docs/RECIPE.md "Fine-tuning"): train, evaluate and
predict one task, N trials.

Wires a task (tasks.py, looked up in registry.py) to the shared training machinery: the recipe's
AdamW with layer-wise lr decay and linear warmup/decay (optimization.py), the generic Trainer
over the model contract (tf.distribute strategies, mixed precision, checkpoints and resume,
stateless seeding, progress with ETA; loop.py), and --init_checkpoint restoring the pre-trained
discriminator (checkpoint_io). Each evaluation scores the dev split(s) with the task's metrics
and writes them to TensorBoard and to `eval_results.json`; `results.json` in model_dir
summarizes the trials (each, mean, best).
"""

import dataclasses
import json
import math
import sys

import keras
import numpy as np
import tensorflow as tf

from electra_tf import checkpoint_io, io
from electra_tf import config as config_lib
from electra_tf.cli import UserError
from electra_tf.finetune import options as options_lib
from electra_tf.finetune import registry, tasks
from electra_tf.finetune.options import FinetuneOptions
from electra_tf.tokenization import Tokenizer
from electra_tf.training import distribute, loop, optimization, summaries
from electra_tf.training.results import record_eval

RESULTS_FILE = "results.json"
VOCAB_FILE = "vocab.txt"


@dataclasses.dataclass
class Hyperparameters:
    """The run's optimization settings after the recipe's per-size and per-task defaults."""

    learning_rate: float
    layerwise_lr_decay: float | None
    num_train_epochs: float
    num_train_steps: int
    num_warmup_steps: int


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resolve_config(options: FinetuneOptions, tokenizer: Tokenizer) -> config_lib.ModelConfig:
    """Model sizes: --config_file, else config.json beside --init_checkpoint (or the shapes of a
    TF1 checkpoint), else the --model_size preset."""
    config, source = None, None
    if options.init_checkpoint:
        checkpoint_io.resolve_prefix(options.init_checkpoint)
    if options.config_file:
        source = f"--config_file={options.config_file}"
        try:
            config = config_lib.ModelConfig.load(options.config_file)
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(f"{source}: {io.first_line(e)}") from None
    elif options.init_checkpoint:
        source = f"--init_checkpoint={options.init_checkpoint}"
        config = checkpoint_io.model_config_of(options.init_checkpoint)
    if config is not None and config.vocab_size != tokenizer.vocab_size:
        raise UserError(f"{source} has vocab_size {config.vocab_size}, but --vocab_file="
                        f"{options.vocab_file} has {tokenizer.vocab_size} tokens; use the "
                        "pre-trained model's vocabulary")
    if config is None:
        config = config_lib.model_preset(options.model_size, vocab_size=tokenizer.vocab_size)
    length = options.max_seq_length
    try:
        config.validate()
        if length > config.max_position_embeddings:
            raise ValueError(f"max_seq_length={length} exceeds "
                             f"max_position_embeddings={config.max_position_embeddings}")
        if length < 5:
            raise ValueError(f"max_seq_length={length} must be at least 5")
    except ValueError as e:
        raise UserError(f"--max_seq_length={length}: {e}") from None
    return config


def size_name(config: config_lib.ModelConfig, options: FinetuneOptions) -> str:
    """The preset these sizes belong to (picks the recipe's lr/decay defaults)."""
    for name, preset in config_lib.MODEL_PRESETS.items():
        if (preset.hidden_size, preset.num_hidden_layers) == (
                config.hidden_size, config.num_hidden_layers):
            return name
    return options.model_size


def hyperparameters(options: FinetuneOptions, task: tasks.Task, config,
                    num_train_examples: int) -> Hyperparameters:
    """The recipe's fine-tuning settings, flags overriding them."""
    size = size_name(config, options)
    epochs = options.num_train_epochs or task.default_epochs
    steps = max(1, int(num_train_examples * epochs / options.train_batch_size))
    if options.max_train_steps:
        steps = min(steps, options.max_train_steps)
    decay = options.layerwise_lr_decay
    if decay is None:
        decay = options_lib.RECIPE_LAYERWISE_DECAY.get(size, options_lib.DEFAULT_LAYERWISE_DECAY)
    return Hyperparameters(
        learning_rate=options.learning_rate or options_lib.RECIPE_LEARNING_RATE.get(
            size, options_lib.DEFAULT_LEARNING_RATE),
        layerwise_lr_decay=None if decay == 1.0 else decay,
        num_train_epochs=epochs,
        num_train_steps=steps,
        num_warmup_steps=int(steps * options.warmup_proportion))


def train_input_fn(arrays: dict, seed: int):
    """Endless stream of global batches, a fresh permutation of the data per epoch.

    The order is a stateless function of (seed, epoch, position), so a resumed run starts the
    stream at its checkpoint's batch (`start_batch`) at no cost and sees exactly the batches it
    would have seen.
    """
    tensors = {key: tf.constant(value) for key, value in arrays.items()}
    size = len(next(iter(arrays.values())))

    def input_fn(global_batch_size: int, context: tf.distribute.InputContext, start_batch: int):
        def example(index):
            epoch = index // size
            seeds = tf.stack([tf.constant(seed, tf.int64), epoch])
            row = tf.random.experimental.index_shuffle(index % size, seeds, size - 1)
            return {key: tf.gather(value, row) for key, value in tensors.items()}

        dataset = tf.data.Dataset.range(start_batch * global_batch_size, sys.maxsize).map(
            example)
        return worker_rows(dataset.batch(global_batch_size, drop_remainder=True),
                           global_batch_size, context)

    return input_fn


def worker_rows(batches: tf.data.Dataset, global_batch_size: int,
                context: tf.distribute.InputContext) -> tf.data.Dataset:
    """This input pipeline's consecutive rows of each global batch (the input contract of the
    Trainer and of `distribute.distribute_input`)."""
    per_worker = global_batch_size // context.num_input_pipelines
    first = context.input_pipeline_id * per_worker
    return batches.map(lambda batch: {k: v[first:first + per_worker] for k, v in batch.items()})


class Predictor:
    """Per-example model outputs over a FeatureSet, on every replica of the strategy.

    The last batch is padded with zero-weight rows to a full global batch (static shapes on
    every replica); each replica scores consecutive rows (distribute.distribute_input, as in
    training) and the results are gathered in order. One compiled step serves every evaluation
    and prediction of a trial.
    """

    def __init__(self, strategy: tf.distribute.Strategy, model, output_keys: tuple,
                 batch_size: int):
        self.strategy = strategy
        self.output_keys = tuple(output_keys)
        self.batch_size = batch_size
        replicas = strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise UserError(f"--eval_batch_size={batch_size} is not divisible by {replicas} "
                            "replicas")

        def replica_fn(inputs):
            outputs = model(inputs, training=False)
            loss_sum, loss_count, _ = outputs["losses"]["loss"]
            return ({key: outputs[key] for key in self.output_keys},
                    tf.stack([tf.cast(loss_sum, tf.float32), tf.cast(loss_count, tf.float32)]))

        @tf.function
        def step(batch):
            values, loss = strategy.run(replica_fn, args=(batch,))
            return ({key: strategy.gather(value, axis=0) for key, value in values.items()},
                    strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None))

        self._step = step

    def _dataset(self, arrays: dict) -> tf.data.Dataset:
        def input_fn(global_batch_size: int, context: tf.distribute.InputContext):
            # padded to whole batches: every batch is full (static shapes for the replicas)
            batches = tf.data.Dataset.from_tensor_slices(arrays).batch(global_batch_size,
                                                                       drop_remainder=True)
            return worker_rows(batches, global_batch_size, context)

        return distribute.distribute_input(self.strategy, input_fn, self.batch_size)[0]

    def __call__(self, features: tasks.FeatureSet) -> tuple[dict, float]:
        """(outputs {key: numpy [N, ...]} in example order, mean loss over the examples)."""
        count = features.num_examples
        padded = math.ceil(count / self.batch_size) * self.batch_size
        arrays = {**features.arrays, "example_weight": np.ones(count, np.float32)}
        arrays = {k: np.concatenate([v, np.zeros((padded - count,) + v.shape[1:], v.dtype)])
                  for k, v in arrays.items()}
        collected = {key: [] for key in self.output_keys}
        loss_total = np.zeros(2)
        for batch in self._dataset(arrays):
            values, loss = self._step(batch)
            for key in self.output_keys:
                collected[key].append(values[key].numpy())
            loss_total += loss.numpy()
        outputs = {key: np.concatenate(parts)[:count] for key, parts in collected.items()}
        return outputs, float(loss_total[0] / max(loss_total[1], 1.0))


class TrialRunner:
    """One fine-tuning trial in its own directory: train, evaluate, predict."""

    def __init__(self, options: FinetuneOptions, task: tasks.Task, config, strategy,
                 data: dict, directory: str, seed: int):
        self.options = options
        self.task = task
        self.config = config
        self.strategy = strategy
        self.data = data
        self.directory = directory
        self.seed = seed
        self.chief = distribute.is_chief(strategy)
        self.summaries = summaries.SummaryWriters(directory, enabled=self.chief)
        self._predictor = None

    def predictor(self, model) -> Predictor:
        if self._predictor is None:
            self._predictor = Predictor(self.strategy, model, self.task.output_keys,
                                        self.options.eval_batch_size)
        return self._predictor

    def build_trainer(self, hparams: Hyperparameters) -> loop.Trainer:
        options, config = self.options, self.config
        checkpoint_io.ensure_model_config(self.directory, config, write=self.chief)
        # Process-wide state is the caller's (loop.py): the seed (the head's initialization),
        # then the dtype policy the model is built under.
        keras.utils.set_random_seed(self.seed)
        keras.mixed_precision.set_global_policy(options.mixed_precision)

        def init_fn(model):
            prefix = checkpoint_io.restore_discriminator(model.backbone, options.init_checkpoint)
            log(f"initialized the discriminator from {prefix}")

        def optimizer_fn():
            return optimization.create_optimizer(
                "adamw", hparams.learning_rate, hparams.num_train_steps,
                hparams.num_warmup_steps, weight_decay=options.weight_decay,
                layerwise_lr_decay=hparams.layerwise_lr_decay,
                num_layers=config.num_hidden_layers if hparams.layerwise_lr_decay else None)

        return loop.Trainer(
            strategy=self.strategy, model_fn=lambda: self.task.build_model(config),
            optimizer_fn=optimizer_fn,
            train_input_fn=train_input_fn(self.data["train"].arrays, self.seed),
            model_dir=self.directory, train_batch_size=options.train_batch_size,
            eval_batch_size=options.eval_batch_size, seed=self.seed,
            steps_per_loop=max(1, options.log_every_steps), jit_compile=options.jit_compile,
            mixed_precision=options.mixed_precision,
            clip_norm=1.0, save_checkpoints_steps=options.save_checkpoints_steps,
            keep_checkpoint_max=options.keep_checkpoint_max,
            init_fn=init_fn if options.init_checkpoint else None, log_fn=log)

    def restore_for_inference(self):
        """The fine-tuned model of this trial directory (for --nodo_train runs)."""
        keras.mixed_precision.set_global_policy(self.options.mixed_precision)
        with self.strategy.scope():
            opened = checkpoint_io.open_checkpoint(self.directory, flag="--model_dir")
        if opened.task is None:
            raise UserError(f"--model_dir={self.directory}: holds a pre-training checkpoint, "
                            f"not a fine-tuned model (no {tasks.TASK_FILE})")
        return opened.model

    def evaluate(self, model, step: int) -> dict:
        scores_by_split = {}
        for split in self.task.eval_splits:
            features = self.data[split]
            outputs, loss = self.predictor(model)(features)
            scores = {**self.task.evaluate(features, outputs), "loss": loss}
            scores_by_split[split] = scores
            name = "eval" if len(self.task.eval_splits) == 1 else f"eval_{split}"
            self.summaries.scalars(name, step, scores)
            log(f"{split} at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                        scores.items()))
        if self.chief:
            record_eval(self.directory, step, scores_by_split)
        return scores_by_split

    def write_predictions(self, model) -> list:
        paths = []
        for split in self.task.test_splits:
            features = self.data[split]
            outputs, _ = self.predictor(model)(features)
            path = io.join(self.directory, f"{split}_predictions.tsv")
            if self.chief:
                self.task.write_predictions(path, features, outputs)
                log(f"wrote {features.num_examples:,} predictions to {path}")
            paths.append(path)
        return paths

    def run(self) -> tuple[dict, int]:
        """(results {split: metrics} of the last evaluation, the final training step)."""
        options = self.options
        results, step = {}, 0
        if options.do_train:
            hparams = hyperparameters(options, self.task, self.config,
                                      self.data["train"].num_examples)
            log(f"trial in {self.directory}: {hparams.num_train_steps} steps "
                f"({hparams.num_train_epochs:g} epochs of {self.data['train'].num_examples:,} "
                f"examples, batch {options.train_batch_size}), lr {hparams.learning_rate:g}, "
                f"layer-wise decay {hparams.layerwise_lr_decay}, warmup "
                f"{hparams.num_warmup_steps} steps, seed {self.seed}")
            trainer = self.build_trainer(hparams)
            model = trainer.model
            stops = [hparams.num_train_steps]
            if options.eval_every_epochs and options.do_eval:
                steps_per_epoch = max(1, hparams.num_train_steps / hparams.num_train_epochs)
                every = max(1, int(round(options.eval_every_epochs * steps_per_epoch)))
                stops = list(range(every, hparams.num_train_steps, every)) + stops
            for stop in stops:
                if stop <= int(trainer.step.numpy()) and stop != stops[-1]:
                    continue
                outcome = trainer.train(stop)
                step = outcome.step
                if outcome.stopped_by_signal:
                    raise UserError(f"stopped by SIGTERM at step {step}; run again to resume")
                if options.do_eval:
                    results = self.evaluate(model, step)
        else:
            model = self.restore_for_inference()
        if options.do_eval and not options.do_train:
            results = self.evaluate(model, 0)
        if options.do_predict:
            self.write_predictions(model)
        self.summaries.close()
        return results, step


def summarize(task: tasks.Task, trials: list) -> dict:
    """Per-trial results, their mean, and the best trial by the task's primary metric."""
    evaluated = [t for t in trials if t["results"]]
    summary = {"task": task.name, "primary_metric": task.primary_metric, "trials": trials}
    if not evaluated:
        return summary
    first_split = task.eval_splits[0]
    mean = {split: {metric: float(np.mean([t["results"][split][metric] for t in evaluated]))
                    for metric in evaluated[0]["results"][split]}
            for split in task.eval_splits}
    best = max(evaluated, key=lambda t: t["results"][first_split][task.primary_metric])
    summary.update(mean=mean, best=best)
    return summary


def needed_splits(options: FinetuneOptions, task: tasks.Task) -> list:
    splits = []
    if options.do_train:
        splits.append("train")
    if options.do_eval:
        splits.extend(task.eval_splits)
    if options.do_predict:
        splits.extend(task.test_splits)
    for split in splits:
        if not task.has_split(split):
            what = "training" if split == "train" else "evaluation" if split in \
                task.eval_splits else "prediction"
            flag = {"train": "--train_file", "dev": "--dev_file", "test": "--test_file"}.get(
                split, "--data_dir")
            raise UserError(f"{what} needs the {split!r} data of task {task.name!r} ({flag})")
    return splits




def save_task_files(directory: str, task: tasks.Task, tokenizer: Tokenizer,
                    options: FinetuneOptions, pairs: bool) -> None:
    """finetune_task.json and the vocabulary: what export and predict-only runs rebuild from."""
    vocab = io.join(directory, VOCAB_FILE)
    if io.absolute(tokenizer.vocab_file) != io.absolute(vocab):
        io.copy_file(tokenizer.vocab_file, vocab)
    io.write_json(io.join(directory, tasks.TASK_FILE), {
        **task.metadata(), "vocab_file": VOCAB_FILE,
        "vocab_sha256": io.sha256_file(tokenizer.vocab_file),
        "do_lower_case": tokenizer.do_lower_case,
        "strip_accents": tokenizer.strip_accents, "max_seq_length": options.max_seq_length,
        "text_pairs": pairs})


def run(options: FinetuneOptions) -> dict:
    """Fine-tunes (and/or evaluates, predicts) `options.task`; returns the results summary.

    `options` come from `options.build` (or finetune/flags.py), validated and with the task's
    sequence length resolved.
    """
    # Before any TensorFlow op (the task's readers included): --cpu_devices splits the CPU and
    # multi_worker_mirrored configures collective ops only while TensorFlow is not started.
    strategy = distribute.create_strategy(options.strategy, options.tpu, options.cpu_devices,
                                          options.collective_timeout_seconds)
    task = registry.get_task(options.task, options)
    tokenizer = Tokenizer(options.vocab_file, do_lower_case=options.do_lower_case,
                          strip_accents=options.do_lower_case)
    io.checked(tf.io.gfile.makedirs, options.model_dir, "--model_dir")
    task.prepare(options.model_dir, options.do_train)
    config = resolve_config(options, tokenizer)
    data = {}
    for split in needed_splits(options, task):
        examples = task.read(split)
        data[split] = task.featurize(examples, tokenizer, options.max_seq_length)
        log(f"{split}: {data[split].num_examples:,} examples")
    pairs = any(getattr(e, "text_b", None) is not None for f in data.values()
                for e in f.examples[:100])
    trials = []
    for k in range(options.num_trials):
        directory = (options.model_dir if options.num_trials == 1
                     else io.join(options.model_dir, f"trial_{k}"))
        if distribute.is_chief(strategy):
            save_task_files(directory, task, tokenizer, options, pairs)
        runner = TrialRunner(options, task, config, strategy, data, directory,
                             seed=options.seed + k)
        # A lost peer ends the run at once, naming the checkpoint to resume from (an ordinary
        # exit would hang in TensorFlow's cluster shutdown).
        with distribute.exit_at_once_if_a_worker_is_lost():
            results, step = runner.run()
        trials.append({"trial": k, "seed": options.seed + k, "model_dir": directory,
                       "step": step, "results": results})
    summary = summarize(task, trials)
    if distribute.is_chief(strategy):
        if options.num_trials > 1:
            save_task_files(options.model_dir, task, tokenizer, options, pairs)
        io.write_json(io.join(options.model_dir, RESULTS_FILE), summary)
    if "mean" in summary:
        for split, scores in summary["mean"].items():
            label = "mean over trials" if options.num_trials > 1 else "results"
            log(f"{task.name} {split} {label}: " + json.dumps(
                {k: round(v, 4) for k, v in scores.items()}))
        if options.num_trials > 1:
            best = summary["best"]
            log(f"best trial {best['trial']} ({task.primary_metric} "
                f"{best['results'][task.eval_splits[0]][task.primary_metric]:.4f}): "
                f"{best['model_dir']}")
    return summary
