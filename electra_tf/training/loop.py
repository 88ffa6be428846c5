"""The training loop of the ELECTRA recipe, generic over models that follow the loss contract.

It replaces the reference's TPUEstimator loop (train + periodic eval + checkpoints) with a
tf.distribute custom loop, used by pre-training and fine-tuning alike. It knows nothing about
ELECTRA: what the model is, where its initial weights come from and which architecture a
model_dir holds are its callers' business.

Trainer API
-----------
    keras.utils.set_random_seed(seed)                 # process-wide state is the caller's:
    keras.mixed_precision.set_global_policy(policy)   # set both before creating the Trainer
    trainer = Trainer(
        strategy=strategy,                # from electra_tf.training.distribute.create_strategy
        model_fn=lambda: model,           # called once under strategy.scope()
        optimizer_fn=lambda: optimizer,   # idem; wrapped in LossScaleOptimizer for mixed_float16
        train_input_fn=fn,                # fn(global_batch_size, input_context, start_batch)
                                          # -> tf.data.Dataset (the stream from global batch
                                          # number start_batch on)
        eval_input_fn=fn_or_None,         # fn(global_batch_size, input_context): an infinite,
                                          # deterministic stream for eval
        model_dir=path,
        train_batch_size=256,             # global, across replicas and accumulation steps
        eval_batch_size=256,              # global
        seed=0, grad_accum_steps=1, steps_per_loop=100, jit_compile=False,
        mixed_precision="float32",        # the policy set above (checked), or "mixed_bfloat16",
                                          # "mixed_float16"
        clip_norm=1.0, save_checkpoints_steps=1000, keep_checkpoint_max=5,
        init_fn=None,                     # fn(model), run once when model_dir has no checkpoint
                                          # to resume (e.g. weights from --init_checkpoint)
        example_summary_fn=None,          # fn(sample: {name: numpy row}) -> markdown, after evals
        log_fn=None,                      # fn(str), where progress lines go (default: stderr)
        input_description=None)           # JSON-able: what the training input is built from
                                          # (files, sizes...); recorded in model_dir/
                                          # input_stream.json; a resumed run whose description
                                          # differs restarts the input stream instead of
                                          # continuing the checkpoint's
    result = trainer.train(num_train_steps, eval_every_steps=0, num_eval_steps=100)
    # -> TrainResult(step, stopped_by_signal, eval_results, train_metrics); raises
    #    TrainingDiverged (a UserError) when the loss turns NaN/Inf: nothing is saved after the
    #    last good checkpoint.
    metrics = trainer.run_steps(n)               # n steps in one call, no saving or evaluation
    metrics = trainer.evaluate(num_eval_steps)   # {"loss": .., metric names..., auc names...}
    trainer.model, trainer.optimizer, trainer.step (= trainer.optimizer.iterations),
    trainer.strategy

Input functions return, for input pipeline p of P (P = number of workers), batches holding rows
[p*b, (p+1)*b) of each global batch, b = global_batch_size / P, as a dict of tensors with a
leading batch dimension (electra_tf.data.pretraining_dataset does this);
electra_tf.training.distribute hands each replica its consecutive rows of them through
`strategy.distribute_datasets_from_function`, prefetched onto the replicas' devices.

Input position: TensorFlow cannot checkpoint the iterator of a distributed dataset (under any
strategy), so the checkpoints keep the number of batches the run took from it (`input_position`,
with the batches of skipped mixed_float16 steps), and a resumed run asks the train input
function for the stream from that batch on (`start_batch`): the pre-training pipeline skips the
records already read (electra_tf/data.py, costing one read of them), the fine-tuning stream
starts at that index. With the same input (input_stream.json) and the same number of workers
this is the stream the interrupted run would have read next.

The model contract: `outputs = model(features, training=..., dropout_seed=...)` returns
`outputs["losses"] = {name: (sum, count, weight)}` (total loss = sum_k weight_k * sum_k /
global_count_k, global counts all-reduced over replicas, so it equals the one-device loss of the
same global batch), `outputs["metrics"] = {name: (sum, count)}` (reported as global sum / count),
`outputs["auc"] = {name: (labels, scores in [0, 1], weights)}` (ROC AUC computed from 1,000-bin
histograms of the scores, summed over replicas and steps), any other key: tensors [B, ...] that
`example_summary_fn` receives (row 0 of replica 0 of the first eval batch) with the features.

Per step, on every replica: dropout_seed = f(seed, step, replica id, micro-step); the gradients
of `grad_accum_steps` micro-batches are averaged (each micro-batch loss normalized by its own
global counts, like Keras' gradient accumulation); then the gradient contract below.
`steps_per_loop` steps run inside one tf.function.

One step counter: `trainer.step` is `optimizer.iterations`, the counter the learning-rate schedule
reads. It counts applied updates: under mixed_float16 a step whose gradients overflow is skipped
by the loss-scale optimizer and not counted (the loop takes the next batch), so the schedule
reaches 0 exactly at num_train_steps. Checkpoints keep it under the key "step".

Input on resume: `input_description` (what the training input is built from) is recorded in
model_dir/input_stream.json; a resumed run with another description restarts the input stream
rather than continue the checkpoint's (one line says so), the same description continues it.
Multi-worker: a lost peer (its connection closed, or no answer within the strategy's collective
timeout) ends `train` with distribute.WorkerLost instead of a hang.

Gradient contract (the one owner of reduction and clipping; public APIs only)
------------------------------------------------------------------------------
1. Each replica computes the gradient of its share of the global loss (the loss above), so the
   sum over replicas is the one-device gradient of the global batch.
2. It all-reduces (sums) a copy of it only to compute the global norm: that of the summed
   gradient, as the recipe clips it (under mixed_float16, of the summed gradient divided by the
   loss scale).
3. It multiplies its own, unreduced gradient by the clipping factor computed as
   tf.clip_by_global_norm computes it from that norm (`clip_gradients` calls it with
   `use_norm`), so one device gives bit-identical results to a plain clip_by_global_norm; a
   non-finite norm makes the factor NaN on every replica alike (the loss-scale optimizer then
   skips the step everywhere, and the loop stops on it otherwise).
4. It calls the public `optimizer.apply(grads, variables)` in replica context, where Keras sums
   the gradients over the replicas itself (for mixed_float16, the LossScaleOptimizer unscales
   them first); optimization.py's optimizers add neither a sum nor a clip, and refuse Keras'.
tests/electra_tf/training/test_distribute.py checks the resulting update against
-lr * the clipped global gradient with SGD on one and two replicas: a Keras that summed twice,
or did not sum, or a clip that went missing, fails it.
"""

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.cli import Progress, UserError
from electra_tf.training import checkpoints, distribute, results, summaries

AUC_BINS = 1000
# Consecutive steps skipped for overflowing gradients (mixed_float16) after which the run stops
# as diverged: the loss scale has then been halved this many times, from 2^15 to below 2^-16.
MAX_SKIPPED_STEPS = 32


class TrainingDiverged(UserError):
    """The loss became NaN or Inf; the run stops without saving a checkpoint."""


# What a collective raises when a peer is gone: its connection reset (Unavailable), the
# collective timeout (DeadlineExceeded), or collectives aborted after either (Cancelled,
# Aborted).
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError, tf.errors.AbortedError)


@dataclasses.dataclass
class TrainResult:
    step: int
    stopped_by_signal: bool
    eval_results: dict
    train_metrics: dict = dataclasses.field(default_factory=dict)  # of the first loop run


def auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC = P(score of a positive > score of a negative), ties within a bin counted half."""
    positive = np.asarray(positive, np.float64)
    negative = np.asarray(negative, np.float64)
    total = positive.sum() * negative.sum()
    if total <= 0:
        return float("nan")
    negatives_below = np.cumsum(negative) - negative
    return float(np.sum(positive * (negatives_below + 0.5 * negative)) / total)


def _histograms(labels, scores, weights):
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
    weights = tf.reshape(tf.cast(weights, tf.float32), [-1])
    bins = tf.clip_by_value(tf.cast(scores * AUC_BINS, tf.int32), 0, AUC_BINS - 1)
    positive = tf.math.unsorted_segment_sum(weights * labels, bins, AUC_BINS)
    negative = tf.math.unsorted_segment_sum(weights * (1.0 - labels), bins, AUC_BINS)
    return tf.stack([positive, negative])


def _replica_sum(values):
    """The sum over replicas of a structure of tensors, in replica context."""
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def clip_gradients(grads: list, clip_norm: float, loss_scale=None) -> tuple:
    """Steps 2-3 of the gradient contract, in replica context: (this replica's gradients times
    the global clipping factor, the global norm). `loss_scale`: the dynamic scale the gradients
    carry (mixed_float16); the norm is that of the unscaled summed gradient."""
    summed = _replica_sum(grads)
    if loss_scale is not None:
        summed = [g / loss_scale for g in summed]
    norm = tf.linalg.global_norm(summed)
    clipped, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
    return clipped, norm


class Trainer:
    """Custom tf.distribute training loop over the model contract (see the module docstring)."""

    def __init__(self, *, strategy, model_fn, optimizer_fn, train_input_fn=None,
                 eval_input_fn=None, model_dir: str, train_batch_size: int,
                 eval_batch_size: int = 0, seed: int = 0, grad_accum_steps: int = 1,
                 steps_per_loop: int = 100, jit_compile: bool = False,
                 mixed_precision: str = "float32", clip_norm: float = 1.0,
                 save_checkpoints_steps: int = 1000, keep_checkpoint_max: int = 5,
                 init_fn=None, example_summary_fn=None, log_fn=None,
                 input_description=None):
        self.strategy = strategy
        self.model_dir = model_dir
        self.seed = int(seed)
        self.grad_accum_steps = max(1, int(grad_accum_steps))
        self.steps_per_loop = max(1, int(steps_per_loop))
        self.save_checkpoints_steps = int(save_checkpoints_steps)
        self.clip_norm = float(clip_norm)
        self.example_summary_fn = example_summary_fn
        self.log = log_fn or (lambda line: print(line, file=sys.stderr, flush=True))
        self.train_batch_size = int(train_batch_size)
        self.eval_batch_size = int(eval_batch_size or train_batch_size)
        self.num_replicas = strategy.num_replicas_in_sync
        self.num_workers = distribute.num_workers(strategy)
        self.worker = distribute.worker_index(strategy)
        self.chief = distribute.is_chief(strategy)
        self._check_batch_sizes()
        self._float16 = self._check_policy(mixed_precision)
        self.summaries = summaries.SummaryWriters(model_dir, enabled=self.chief)
        # Input pipelines before the model, as always: random ops seeded by the global seed
        # take their op seeds in creation order, so this order is part of a run's numerics.
        self._create_input(train_input_fn, eval_input_fn)
        self._input_record = checkpoints.InputRecord(model_dir, input_description,
                                                     write=self.chief)
        self._create_state(model_fn, optimizer_fn, keep_checkpoint_max)
        if not self.resumed_from and init_fn is not None:
            init_fn(self.model)
        position = int(self._input_position.numpy())
        if self.input_restored and position:
            self._train_data = self._distribute_train_input(position)
        self._train_iterator = iter(self._train_data) if self._train_data is not None else None
        self._compile(jit_compile)

    # ------------------------------------------------------------------------- construction
    def _check_batch_sizes(self) -> None:
        if self.train_batch_size % (self.num_replicas * self.grad_accum_steps):
            raise UserError(f"--train_batch_size={self.train_batch_size} is not divisible by "
                            f"{self.num_replicas} replicas x --grad_accum_steps="
                            f"{self.grad_accum_steps}")
        if self.eval_batch_size % self.num_replicas:
            raise UserError(f"eval batch size {self.eval_batch_size} is not divisible by "
                            f"{self.num_replicas} replicas")

    @staticmethod
    def _check_policy(mixed_precision: str) -> bool:
        """Whether loss scaling is on; the caller must have set the matching global policy
        (layers take their dtypes from it when model_fn builds them)."""
        policy = keras.mixed_precision.global_policy().name
        if policy != mixed_precision:
            raise ValueError(f"mixed_precision={mixed_precision!r} but the global Keras policy "
                             f"is {policy!r}: call keras.mixed_precision.set_global_policy("
                             f"{mixed_precision!r}) before creating the Trainer")
        return mixed_precision == "mixed_float16"

    def _create_input(self, train_input_fn, eval_input_fn) -> None:
        self._train_input_fn = train_input_fn
        self._train_data = self._eval_data = None
        self._train_spec = self._eval_spec = None
        if train_input_fn is not None:
            self._train_data = self._distribute_train_input(0)
        if eval_input_fn is not None:
            self._eval_data, self._eval_spec = distribute.distribute_input(
                self.strategy, eval_input_fn, self.eval_batch_size)
        if self._train_data is None and self._eval_data is None:
            raise ValueError("Trainer needs train_input_fn or eval_input_fn")
        # Not a distributed variable: every replica takes the same batches, and each worker
        # saves the count along with its checkpoint.
        self._input_position = tf.Variable(0, dtype=tf.int64, trainable=False,
                                           name="input_position")

    def _distribute_train_input(self, position: int):
        """The distributed training stream from step-sized batch number `position` on."""
        micro_size = self.train_batch_size // self.grad_accum_steps
        start = position * self.grad_accum_steps  # in batches of micro_size rows

        def input_fn(global_batch_size, context):
            return self._train_input_fn(global_batch_size, context, start)

        dataset, self._train_spec = distribute.distribute_input(
            self.strategy, input_fn, micro_size, self.grad_accum_steps)
        return dataset

    def _create_state(self, model_fn, optimizer_fn, keep_checkpoint_max: int) -> None:
        """Model, optimizer, step and their checkpoints; restores the latest one, if any."""
        with self.strategy.scope():
            self.model = model_fn()
            optimizer = optimizer_fn()
            if self._float16:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self._build_model()
            self.optimizer.build(self.model.trainable_variables)
        # One step counter: the optimizer's, which the learning-rate schedule reads and which
        # counts applied updates only (a mixed_float16 step whose gradients overflow is skipped
        # by the loss-scale optimizer, so it is not a step, and the run takes one more batch).
        # Checkpoints keep it under "step", the key of the Trainer's former own counter.
        self.step = self.optimizer.iterations
        self.checkpoints = checkpoints.CheckpointKeeper(
            checkpoints.checkpoint_directory(self.model_dir, self.chief, self.worker),
            keep_checkpoint_max,
            position_key=("input_position" if self.num_workers == 1
                          else f"input_position_of_{self.num_workers}_workers"),
            position=self._input_position if self._train_data is not None else None,
            state_directory=self.model_dir,
            peer_directories=[checkpoints.checkpoint_directory(self.model_dir, i == 0, i)
                              for i in range(self.num_workers)],
            model=self.model, optimizer=self.optimizer, step=self.step)
        self.resumed_from, self.input_restored = self.checkpoints.restore_latest(
            restore_position=self._input_record.matches())

    def _build_model(self) -> None:
        """Creates the variables (needed before checkpoint restore and the optimizer build).

        Runs the model once on zeros shaped like one replica's batch: reading a real batch
        would consume a shuffle epoch of the (seeded) input and shift the training stream.
        """
        spec = self._train_spec if self._train_spec is not None else self._eval_spec
        skip = 1 if self.grad_accum_steps > 1 and spec is self._train_spec else 0

        def zeros(tensor_spec):
            shape = tensor_spec.shape.as_list()[skip:]
            return tf.zeros([d or 1 for d in shape], tensor_spec.dtype)

        outputs = self.model(tf.nest.map_structure(zeros, spec), training=False)
        self._loss_names = sorted(outputs["losses"])
        self._metric_names = sorted(outputs.get("metrics", {}))
        self._auc_names = sorted(outputs.get("auc", {}))

    def _compile(self, jit_compile: bool) -> None:
        replica_train = self._replica_train_step
        replica_eval = self._replica_eval_step
        if jit_compile:
            replica_train = tf.function(replica_train, jit_compile=True)
            replica_eval = tf.function(replica_eval, jit_compile=True)
        self._replica_train = replica_train
        self._replica_eval = replica_eval
        self._train_loop_fn = tf.function(self._train_loop)
        self._eval_fn = tf.function(self._eval_batch)

    # ------------------------------------------------------------------------ replica fns
    def _dropout_seed(self, step, replica, micro):
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        key = tf.random.experimental.stateless_fold_in(
            key, tf.cast(replica, tf.int64) * self.grad_accum_steps + tf.cast(micro, tf.int64))
        return tf.random.stateless_uniform([2], seed=key, minval=None, maxval=None,
                                           dtype=tf.int32)

    def _statistics(self, outputs):
        """Replica-local loss and the globally reduced statistics of one (micro-)batch."""
        f32 = lambda x: tf.cast(x, tf.float32)  # noqa: E731
        local = {
            "loss_sums": {k: f32(outputs["losses"][k][0]) for k in self._loss_names},
            "loss_counts": {k: f32(outputs["losses"][k][1]) for k in self._loss_names},
            "metrics": {k: tf.stack([f32(v) for v in outputs["metrics"][k]])
                        for k in self._metric_names},
            "auc": {k: _histograms(*outputs["auc"][k]) for k in self._auc_names},
        }
        reduced = _replica_sum(tf.nest.map_structure(tf.stop_gradient, local))
        loss = tf.constant(0.0)
        reported = tf.constant(0.0)
        for k in self._loss_names:
            weight = tf.cast(outputs["losses"][k][2], tf.float32)
            count = tf.maximum(reduced["loss_counts"][k], 1.0)
            loss += weight * local["loss_sums"][k] / count
            reported += weight * reduced["loss_sums"][k] / count
        stats = {"loss": reported, "metrics": reduced["metrics"], "auc": reduced["auc"]}
        return loss, stats

    def _zero_stats(self):
        return {"loss": tf.constant(0.0),
                "metrics": {k: tf.zeros([2]) for k in self._metric_names},
                "auc": {k: tf.zeros([2, AUC_BINS]) for k in self._auc_names}}

    def _micro_step(self, features, dropout_seed, variables):
        with tf.GradientTape() as tape:
            outputs = self.model(features, training=True, dropout_seed=dropout_seed)
            loss, stats = self._statistics(outputs)
            scaled = self.optimizer.scale_loss(loss) if self._float16 else loss
        grads = tape.gradient(scaled, variables)
        return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                for g, v in zip(grads, variables)], stats

    def _replica_train_step(self, features, step):
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group
        variables = self.model.trainable_variables
        accum = self.grad_accum_steps
        if accum == 1:
            grads, stats = self._micro_step(features, self._dropout_seed(step, replica, 0),
                                            variables)
        else:
            grads = [tf.zeros_like(v) for v in variables]
            stats = self._zero_stats()
            # Each micro-step all-reduces its counts: MirroredStrategy cannot synchronize
            # replicas inside a graph loop, so with several replicas the loop is unrolled.
            micro_steps = tf.range(accum) if self.num_replicas == 1 else range(accum)
            for micro in micro_steps:
                micro_features = tf.nest.map_structure(lambda t, i=micro: t[i], features)
                micro_grads, micro_stats = self._micro_step(
                    micro_features, self._dropout_seed(step, replica, micro), variables)
                grads = [g + m for g, m in zip(grads, micro_grads)]
                stats = tf.nest.map_structure(tf.add, stats, micro_stats)
            grads = [g / accum for g in grads]
            stats["loss"] = stats["loss"] / accum
        scale = (tf.cast(self.optimizer.dynamic_scale, tf.float32) if self._float16
                 else None)
        clipped, norm = clip_gradients(grads, self.clip_norm, loss_scale=scale)
        self.optimizer.apply(clipped, variables)
        finite = tf.math.is_finite(stats["loss"])
        if not self._float16:
            finite = tf.logical_and(finite, tf.math.is_finite(norm))
        stats["grad_norm"] = norm
        stats["finite"] = finite
        return stats

    def _replica_eval_step(self, features):
        outputs = self.model(features, training=False)
        _, stats = self._statistics(outputs)
        known = {"losses", "metrics", "auc"}
        sample = {k: v[0] for k, v in features.items()}
        sample.update({k: v[0] for k, v in outputs.items()
                       if k not in known and isinstance(v, tf.Tensor) and v.shape.rank})
        return stats, sample

    # ------------------------------------------------------------------------- tf.functions
    def _train_loop(self, iterator, num_steps):
        """Runs batches until num_steps updates are applied; stops early at a non-finite step
        (not counted).

        A step the loss-scale optimizer skips (mixed_float16, overflowing gradients) leaves the
        step counter and the metrics as they were and takes the next batch; MAX_SKIPPED_STEPS
        skipped in a row count as a divergence.
        """
        totals = self._zero_stats()
        totals["grad_norm"] = tf.constant(0.0)
        done = tf.constant(0, tf.int32)
        skipped = tf.constant(0, tf.int32)
        diverged = tf.constant(False)
        failed_step = tf.constant(0, tf.int64)  # the 1-based number of the diverged step
        while done < num_steps:
            batch = next(iterator)
            self._input_position.assign_add(1)
            step = tf.convert_to_tensor(self.step)
            result = self.strategy.run(self._replica_train, args=(batch, step))
            result = tf.nest.map_structure(
                lambda v: self.strategy.experimental_local_results(v)[0], result)
            if not result.pop("finite"):
                diverged = tf.constant(True)
                failed_step = step + 1
                break
            with tf.control_dependencies(tf.nest.flatten(result)):
                applied = tf.convert_to_tensor(self.step) > step
            if applied:
                totals = tf.nest.map_structure(tf.add, totals, result)
                done += 1
                skipped = tf.constant(0, tf.int32)
            else:
                skipped += 1
                if skipped >= MAX_SKIPPED_STEPS:
                    diverged = tf.constant(True)
                    failed_step = step + 1
                    break
        return totals, done, diverged, failed_step

    def _eval_batch(self, batch):
        result = self.strategy.run(self._replica_eval, args=(batch,))
        return tf.nest.map_structure(
            lambda v: self.strategy.experimental_local_results(v)[0], result)

    # --------------------------------------------------------------------------- reporting
    def _report(self, totals: dict, count: int) -> dict:
        count = max(count, 1)
        values = {"loss": float(totals["loss"]) / count}
        for name in self._metric_names:
            total, n = np.asarray(totals["metrics"][name], np.float64)
            values[name] = total / n if n else 0.0  # like tf.metrics: precision of none = 0
        for name in self._auc_names:
            positive, negative = np.asarray(totals["auc"][name])
            values[name] = auc_from_histograms(positive, negative)
        if "grad_norm" in totals:
            values["gradient_norm"] = float(totals["grad_norm"]) / count
        return values

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

    # ------------------------------------------------------------------------------ public
    def evaluate(self, num_eval_steps: int) -> dict:
        """Metrics over the first num_eval_steps batches of the eval stream (same every time)."""
        if self._eval_data is None:
            return {}
        totals, sample = None, None
        batches = iter(self._eval_data)  # from the start of the stream every time
        for _ in range(num_eval_steps):
            stats, row = self._eval_fn(next(batches))
            stats = tf.nest.map_structure(lambda t: t.numpy(), stats)
            if totals is None:
                totals, sample = stats, {k: v.numpy() for k, v in row.items()}
            else:
                totals = tf.nest.map_structure(np.add, totals, stats)
        values = self._report(totals, num_eval_steps)
        step = int(self.step.numpy())
        self.summaries.scalars("eval", step, values)
        if self.example_summary_fn is not None and self.chief:
            self.summaries.text("eval", step, "example", self.example_summary_fn(sample))
        if self.chief:
            results.record_eval(self.model_dir, step, values)
        self.log(f"eval at step {step}: " + _format_values(values))
        return values

    def run_steps(self, num_steps: int) -> dict:
        """Runs num_steps training steps in one tf.function call (what `train` runs between two
        progress lines), without saving or evaluating; returns their mean metrics ("loss",
        the model's metrics and AUCs, "gradient_norm").

        Raises TrainingDiverged at the first step whose loss (or gradient norm) is NaN/Inf, or
        after MAX_SKIPPED_STEPS skipped steps in a row; that step is not counted, the weights in
        memory are not to be used any more, and nothing is saved.
        """
        totals, done, diverged, failed_step = self._train_loop_fn(
            self._train_iterator, tf.constant(num_steps, tf.int32))
        if bool(diverged):
            raise TrainingDiverged(
                f"loss became NaN or Inf at step {int(failed_step)}; training "
                f"stopped; last good checkpoint: {self.checkpoints.latest or 'none'} "
                "(try a lower --learning_rate)")
        return self._report(tf.nest.map_structure(lambda t: t.numpy(), totals), int(done))

    def _save(self, step: int) -> None:
        path = self.checkpoints.save(step)
        self._input_record.saved()
        if self.chief:
            self.log(f"saved checkpoint {path}")

    def _stop_requested(self, local: bool) -> bool:
        """A SIGTERM on any worker stops all of them at the same step (collective)."""
        if self.num_workers == 1:
            return local
        flag = self.strategy.experimental_distribute_values_from_function(
            lambda _: tf.constant(1.0 if local else 0.0))
        return bool(self.strategy.reduce(tf.distribute.ReduceOp.SUM, flag, axis=None) > 0)

    def train(self, num_train_steps: int, eval_every_steps: int = 0,
              num_eval_steps: int = 100) -> TrainResult:
        """Trains to num_train_steps (resuming from model_dir), evaluating and saving on the way.

        With several workers, a peer that died or stopped answering makes the collectives fail
        (at once when its connection closes, else after the strategy's collective timeout):
        that ends the run with WorkerLost, naming the last checkpoint, instead of a hang.
        """
        try:
            return self._train(num_train_steps, eval_every_steps, num_eval_steps)
        except PEER_ERRORS as e:
            if self.num_workers == 1:
                raise
            why = ("no answer within the collective timeout"
                   if isinstance(e, tf.errors.DeadlineExceededError) else "connection lost")
            raise distribute.WorkerLost(
                f"worker {self.worker} of {self.num_workers}: another worker stopped answering "
                f"({why}); last good checkpoint: "
                f"{self.checkpoints.resumable() or 'none'}; restart every worker to resume "
                "from it"
                ) from None

    def _train(self, num_train_steps: int, eval_every_steps: int,
               num_eval_steps: int) -> TrainResult:
        step = int(self.step.numpy())
        start = step
        eval_results = {}
        if step >= num_train_steps:
            self.log(f"model_dir already holds step {step} >= {num_train_steps} steps")
            return TrainResult(step, False, self.evaluate(num_eval_steps) if
                               self._eval_data is not None else {})
        if self.resumed_from:
            self.log(f"resumed from {self.resumed_from} at step {step}" + (
                "" if self.input_restored or self._train_iterator is None else
                f" (the training input differs from {self._input_record.path}: the input "
                "stream restarts from the new input)" if not self._input_record.matches() else
                " (written with another number of workers: the input stream restarts)"))
        elif self._eval_data is not None:
            eval_results = self.evaluate(num_eval_steps)  # the "before" of the learning curve
        progress = Progress(num_train_steps - start, "steps")
        stopped = False
        first_metrics = {}
        with checkpoints.StopSignal() as stop:
            while step < num_train_steps:
                n = min(self.steps_per_loop - step % self.steps_per_loop, num_train_steps - step)
                for every in (self.save_checkpoints_steps, eval_every_steps):
                    if every > 0:
                        n = min(n, every - step % every)
                began = time.monotonic()
                values = self.run_steps(n)
                elapsed = time.monotonic() - began
                step += n
                values["learning_rate"] = self._learning_rate()
                values["examples_per_second"] = self.train_batch_size * n / max(elapsed, 1e-9)
                first_metrics = first_metrics or values
                self.summaries.scalars("train", step, values)
                self.log(f"step {step}/{num_train_steps} | {_format_values(values)} | "
                         + progress.line(step - start))
                if self._stop_requested(stop.requested):
                    self._save(step)
                    self.log(f"stopped by SIGTERM at step {step}")
                    stopped = True
                    break
                if step == num_train_steps or (
                        self.save_checkpoints_steps and step % self.save_checkpoints_steps == 0):
                    self._save(step)
                if self._eval_data is not None and (
                        step == num_train_steps
                        or (eval_every_steps and step % eval_every_steps == 0)):
                    eval_results = self.evaluate(num_eval_steps)
        self.summaries.close()
        return TrainResult(step, stopped, eval_results, first_metrics)


def _format_values(values: dict) -> str:
    short = {"examples_per_second": "ex/s", "learning_rate": "lr", "gradient_norm": "gnorm"}
    parts = []
    for name, value in values.items():
        label = short.get(name, name)
        parts.append(f"{label} {value:.3g}" if name != "examples_per_second"
                     else f"{label} {value:,.1f}")
    return " ".join(parts)
