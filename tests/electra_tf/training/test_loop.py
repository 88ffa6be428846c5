"""Tests of the generic Trainer (electra_tf/training/loop.py) on one device with a tiny model.

The update rule is checked against an independent computation with a plain GradientTape and SGD;
distribution, resume and bad input are covered by test_distribute.py and test_run_pretraining.py.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_io, data
from electra_tf.training import distribute, loop, optimization, results
from tests.electra_tf.training.helpers import TinyContractModel, write_shards

SEQ = 16


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return (write_shards(str(root / "train"), num_files=2, examples_per_file=64, seq_length=SEQ),
            write_shards(str(root / "eval"), num_files=1, examples_per_file=32, seq_length=SEQ,
                         seed=9))


def make_trainer(model_dir, shards, model_fn=None, optimizer_fn=None, **kwargs):
    train, held_out = shards
    options = dict(train_batch_size=8, seed=5, steps_per_loop=5, save_checkpoints_steps=10)
    options.update(kwargs)
    keras.utils.set_random_seed(options["seed"])  # the caller's job, as in the pre-training app
    return loop.Trainer(
        strategy=distribute.create_strategy("one_device"),
        model_fn=model_fn or (lambda: TinyContractModel()),
        optimizer_fn=optimizer_fn or (lambda: keras.optimizers.Adam(1e-2)),
        train_input_fn=lambda batch, ctx, start: data.pretraining_dataset(
            train, batch, SEQ, is_training=True, seed=1, input_context=ctx, start_batch=start),
        eval_input_fn=lambda batch, ctx: data.pretraining_dataset(
            held_out, batch, SEQ, is_training=False, input_context=ctx),
        model_dir=str(model_dir), log_fn=lambda line: None, **options)


def weights(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def test_one_step_matches_an_independent_sgd_update_with_accumulation_and_clipping(
        tmp_path, shards):
    lr, clip = 0.5, 0.05  # a small clip norm so clipping is active
    trainer = make_trainer(tmp_path / "m", shards, grad_accum_steps=2, clip_norm=clip,
                           optimizer_fn=lambda: keras.optimizers.SGD(lr))
    model = trainer.model
    before = weights(model)
    # The same first batch, read independently: 2 micro-batches of 4 (global 8 / 2).
    batch = next(iter(data.pretraining_dataset(shards[0], 4, SEQ, is_training=True, seed=1)
                      .batch(2)))
    grads_sum = None
    for micro in range(2):
        features = {k: v[micro] for k, v in batch.items()}
        with tf.GradientTape() as tape:
            out = model(features, training=True, dropout_seed=tf.constant([1, 2]))
            loss = sum(w * s / c for s, c, w in out["losses"].values())
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
        grads_sum = grads if grads_sum is None else [a + b for a, b in zip(grads_sum, grads)]
    grads = [g / 2 for g in grads_sum]
    norm = np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads))
    assert norm > clip
    expected = [w - lr * g.numpy() * clip / norm for w, g in zip(before, grads)]

    result = trainer.train(1)
    assert result.step == 1
    for got, want in zip(weights(model), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_steps_per_loop_does_not_change_the_result(tmp_path, shards):
    finals = []
    for steps_per_loop in (1, 4):
        trainer = make_trainer(tmp_path / f"m{steps_per_loop}", shards,
                               steps_per_loop=steps_per_loop,
                               model_fn=lambda: TinyContractModel(dropout=0.2))
        trainer.train(6)
        finals.append(weights(trainer.model))
    for a, b in zip(*finals):
        np.testing.assert_array_equal(a, b)


def test_training_learns_evaluates_and_writes_results_and_summaries(tmp_path, shards):
    trainer = make_trainer(tmp_path / "m", shards, steps_per_loop=10)
    result = trainer.train(40, eval_every_steps=20, num_eval_steps=4)
    history = json.load(open(tmp_path / "m" / results.EVAL_RESULTS_FILE))["history"]
    assert [h["step"] for h in history] == [0, 20, 40]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["parity_auc"] > 0.9 > history[0]["parity_auc"]
    assert result.eval_results["loss"] == pytest.approx(history[-1]["loss"])
    assert sorted(os.listdir(tmp_path / "m" / "train")) and os.listdir(tmp_path / "m" / "eval")
    tags = set()
    for event_file in tf.io.gfile.glob(str(tmp_path / "m" / "train" / "events*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"loss", "lm_accuracy", "parity_auc", "learning_rate", "gradient_norm",
            "examples_per_second"} <= tags
    assert tf.train.latest_checkpoint(str(tmp_path / "m")).endswith("ckpt-40")


def test_nan_loss_stops_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, shards):
    # Batches of 8: step 26 is the first batch holding example_index 200.
    trainer = make_trainer(tmp_path / "m", shards, model_fn=lambda: TinyContractModel(
        nan_after=200))
    with pytest.raises(loop.TrainingDiverged, match=r"NaN or Inf at step 26;.*ckpt-20"):
        trainer.train(40)
    model_dir = str(tmp_path / "m")
    assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-20")
    reader = tf.train.load_checkpoint(model_dir)
    floats = [name for name, dtype in reader.get_variable_to_dtype_map().items()
              if dtype.is_floating]
    assert len(floats) > 4
    for name in floats:
        assert np.all(np.isfinite(reader.get_tensor(name))), name


def test_resume_continues_where_it_stopped_and_init_checkpoint_takes_weights_only(
        tmp_path, shards):
    straight = make_trainer(tmp_path / "straight", shards, model_fn=lambda: TinyContractModel(
        dropout=0.2))
    straight.train(20)
    first = make_trainer(tmp_path / "resumed", shards, model_fn=lambda: TinyContractModel(
        dropout=0.2))
    first.train(10)
    second = make_trainer(tmp_path / "resumed", shards, model_fn=lambda: TinyContractModel(
        dropout=0.2))
    assert second.resumed_from.endswith("ckpt-10") and int(second.step.numpy()) == 10
    second.train(20)
    for a, b in zip(weights(straight.model), weights(second.model)):
        np.testing.assert_array_equal(a, b)

    def init_from_straight(model):
        checkpoint_io.restore_weights(model, str(tmp_path / "straight"))

    fresh = make_trainer(tmp_path / "init", shards, init_fn=init_from_straight)
    assert int(fresh.step.numpy()) == 0 and int(fresh.optimizer.iterations.numpy()) == 0
    for a, b in zip(weights(straight.model), weights(fresh.model)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(loop.UserError, match="does not fit this model"):
        make_trainer(tmp_path / "init2", shards, init_fn=init_from_straight,
                     model_fn=lambda: TinyContractModel(hidden=4))


def test_auc_from_histograms_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    # Scores on bin centres, so binning loses nothing and ties are real ties.
    scores = (rng.integers(0, loop.AUC_BINS, 300) + 0.5) / loop.AUC_BINS
    labels = (rng.random(300) < scores).astype(np.float32)
    weights_ = rng.integers(0, 3, 300).astype(np.float32)
    positive, negative = loop._histograms(labels, scores, weights_).numpy()
    pos = [(s, w) for s, label, w in zip(scores, labels, weights_) if label == 1]
    neg = [(s, w) for s, label, w in zip(scores, labels, weights_) if label == 0]
    wins = sum(wp * wn * (1.0 if sp > sn else 0.5 if sp == sn else 0.0)
               for sp, wp in pos for sn, wn in neg)
    expected = wins / (sum(w for _, w in pos) * sum(w for _, w in neg))
    assert loop.auc_from_histograms(positive, negative) == pytest.approx(expected, rel=1e-9)


def test_mixed_float16_clips_the_unscaled_gradient_under_loss_scaling(tmp_path, shards):
    lr, clip = 0.5, 0.05
    reference = make_trainer(tmp_path / "f32", shards, clip_norm=clip,
                             optimizer_fn=lambda: keras.optimizers.SGD(lr))
    before = weights(reference.model)
    reference.run_steps(1)
    want = [w - b for w, b in zip(weights(reference.model), before)]
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer = make_trainer(tmp_path / "f16", shards, clip_norm=clip,
                               mixed_precision="mixed_float16",
                               optimizer_fn=lambda: keras.optimizers.SGD(lr))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(trainer.optimizer.dynamic_scale) > 1
    metrics = trainer.run_steps(1)
    # The norm is the unscaled gradient's, and the step is the float32 one up to float16
    # rounding: the loss scale is neither clipped away nor left in the update.
    assert metrics["gradient_norm"] > clip
    got = [w - b for w, b in zip(weights(trainer.model), before)]
    total = np.sqrt(sum(np.sum(d * d) for d in want))
    assert total == pytest.approx(lr * clip, rel=1e-4)  # a clipped float32 step
    error = np.sqrt(sum(np.sum((g - d) ** 2) for g, d in zip(got, want)))
    assert error < 0.02 * total


def test_a_skipped_float16_step_is_not_a_step_and_the_schedule_still_ends_at_zero(
        tmp_path, shards):
    # The batch of step 3 (examples 16..23 at batch 8) overflows in float16: the loss-scale
    # optimizer skips it and halves the scale; it must not count, so six updates take seven
    # batches and the schedule (lr 1e-2 * (1 - step / 6)) reaches 0 exactly at step 6.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer = make_trainer(
            tmp_path / "m", shards, mixed_precision="mixed_float16", steps_per_loop=3,
            save_checkpoints_steps=3, model_fn=lambda: TinyContractModel(overflow_at=20),
            optimizer_fn=lambda: optimization.create_optimizer("adamw", 1e-2, 6, 0))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    scale = float(trainer.optimizer.dynamic_scale)
    result = trainer.train(6)
    assert result.step == 6
    assert float(trainer.optimizer.dynamic_scale) == scale / 2  # exactly one skipped step
    assert int(trainer.optimizer.iterations.numpy()) == int(trainer.step.numpy()) == 6
    assert int(trainer.optimizer.inner_optimizer.iterations.numpy()) == 6
    assert float(trainer.optimizer.learning_rate) == 0.0
    # Checkpoints carry the one counter ("step"), and it resumes.
    reader = tf.train.load_checkpoint(str(tmp_path / "m"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    assert tf.train.latest_checkpoint(str(tmp_path / "m")).endswith("ckpt-6")


def test_the_dtype_policy_is_the_callers_and_must_match(tmp_path, shards):
    with pytest.raises(ValueError, match="set_global_policy"):
        make_trainer(tmp_path / "m", shards, mixed_precision="mixed_bfloat16")


def test_run_steps_returns_the_metrics_and_init_fn_runs_only_without_a_checkpoint(
        tmp_path, shards):
    calls = []
    trainer = make_trainer(tmp_path / "m", shards, init_fn=calls.append)
    assert calls == [trainer.model]
    metrics = trainer.run_steps(3)
    assert int(trainer.step.numpy()) == 3
    assert {"loss", "lm_accuracy", "parity_auc", "gradient_norm"} <= set(metrics)
    trainer.train(10)
    make_trainer(tmp_path / "m", shards, init_fn=calls.append)
    assert len(calls) == 1
