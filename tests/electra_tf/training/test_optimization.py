"""Tests of the recipe's optimizer: AdamW without bias correction, decay exclusions, clipping of the
summed gradient (the Trainer's clip_gradients), the warmup/decay schedule, layer-wise lr decay and
tf.distribute equivalence."""

import contextlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

# Two logical CPU devices for the MirroredStrategy test; this only works before the TF runtime is
# initialized, so it is tried at import (collection) time. When another module got there first,
# the mirrored test reruns itself in a fresh interpreter.
try:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:
    pass

import keras  # noqa: E402

from electra_tf.config import model_preset  # noqa: E402
from electra_tf.modeling.backbone import Backbone  # noqa: E402
from electra_tf.training import loop, optimization  # noqa: E402
from electra_tf.training.optimization import (  # noqa: E402
    AdamWeightDecay,
    LambWeightDecay,
    LinearWarmupLinearDecay,
    create_optimizer,
    layerwise_lr_multipliers,
)

# (path, shape): a decayed kernel, LayerNorm gamma/beta and a bias, as named in the TF1 checkpoints.
VARIABLE_SPECS = (
    ("electra/encoder/layer_0/attention/self/query/kernel", (4, 3)),
    ("electra/encoder/layer_0/attention/output/LayerNorm/gamma", (3,)),
    ("electra/encoder/layer_0/attention/output/LayerNorm/beta", (3,)),
    ("electra/encoder/layer_0/attention/self/query/bias", (3,)),
)
DECAYED = (True, False, False, False)


def make_variables(seed: int = 0) -> list:
    """keras.Variables whose `path` is the TF1 name, with reproducible random values."""
    rng = np.random.default_rng(seed)
    variables = []
    for path, shape in VARIABLE_SPECS:
        *scopes, name = path.split("/")
        with contextlib.ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(keras.name_scope(scope))
            variables.append(keras.Variable(rng.normal(size=shape).astype(np.float32), name=name))
    assert [v.path for v in variables] == [p for p, _ in VARIABLE_SPECS]
    return variables


def recipe_lr(step, peak, total, warmup):
    """The reference's polynomial_decay(power 1, end 0) times min(1, step / warmup)."""
    decayed = peak * (1.0 - min(step, total) / total)
    return decayed * (min(1.0, step / warmup) if warmup else 1.0)


def numpy_recipe_steps(params, grads_per_step, peak, total, warmup, wd, clip, eps=1e-6,
                       decayed=DECAYED, multipliers=None):
    """The recipe's AdamW written out in float64 NumPy: clip by global norm, no bias correction."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    multipliers = multipliers or [1.0] * len(params)
    for step, grads in enumerate(grads_per_step):
        grads = [g.astype(np.float64) for g in grads]
        norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
        if clip is not None and norm > clip:
            grads = [g * clip / norm for g in grads]
        lr = recipe_lr(step, peak, total, warmup)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            update = m[i] / (np.sqrt(v[i]) + eps)
            if decayed[i]:
                update = update + wd * params[i]
            params[i] = params[i] - lr * multipliers[i] * update
    return params


def random_grads(steps, seed=1, scale=5.0):
    rng = np.random.default_rng(seed)
    return [[(scale * rng.normal(size=shape)).astype(np.float32) for _, shape in VARIABLE_SPECS]
            for _ in range(steps)]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_steps_match_numpy_recipe(jit_compile):
    variables = make_variables()
    initial = [v.numpy() for v in variables]
    grads_per_step = random_grads(4)
    # T=10, warmup 2: steps 0..3 cover lr 0, warmup, and the decaying part; gradients of norm
    # ~20 make the clipping at 1.0 active.
    optimizer = create_optimizer("adamw", 0.1, 10, 2, weight_decay=0.01)

    @tf.function(jit_compile=jit_compile)
    def apply(grads):
        optimizer.apply(loop.clip_gradients(grads, 1.0)[0], variables)

    for grads in grads_per_step:
        apply([tf.constant(g) for g in grads])
    expected = numpy_recipe_steps(initial, grads_per_step, 0.1, 10, 2, 0.01, clip=1.0)
    for variable, want in zip(variables, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=2e-5, atol=2e-6)
    assert int(optimizer.iterations) == 4


def test_no_bias_correction_differs_from_keras_adam():
    """The first step without bias correction is ~3.16x Adam's: the test above can tell them."""
    variables = make_variables()
    grads = [tf.constant(g) for g in random_grads(1)[0]]
    ours = [keras.Variable(v.numpy()) for v in variables]
    AdamWeightDecay(learning_rate=0.01, epsilon=1e-6).apply(grads, ours)
    adam = [keras.Variable(v.numpy()) for v in variables]
    keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-6).apply(grads, adam)
    for start, a, b in zip(variables, ours, adam):
        ratio = (a.numpy() - start.numpy()) / (b.numpy() - start.numpy())
        # m / sqrt(v) = 0.1 / sqrt(0.001) against Adam's bias-corrected 1.
        np.testing.assert_allclose(ratio, 0.1 / math.sqrt(0.001), rtol=1e-3)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_no_decay_on_layer_norm_and_bias(name):
    variables = make_variables()
    initial = [v.numpy() for v in variables]
    # Constant lr 0.5 (no warmup, T huge), zero gradients: only the decay moves a variable.
    optimizer = create_optimizer(name, 0.5, 10**9, 0, weight_decay=0.1)
    optimizer.apply([tf.zeros_like(v) for v in variables], variables)
    for variable, start, decayed in zip(variables, initial, DECAYED):
        want = start * (1.0 - 0.5 * 0.1) if decayed else start
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("warmup", [0, 4])
def test_schedule_matches_formula(warmup):
    schedule = LinearWarmupLinearDecay(2e-3, 20, warmup)
    for step in [0, 1, 2, 3, 4, 5, 10, 19, 20, 25]:
        got = float(schedule(tf.constant(step, tf.int64)))
        assert got == pytest.approx(recipe_lr(step, 2e-3, 20, warmup), rel=1e-6, abs=1e-12)
    assert float(schedule(0)) == (0.0 if warmup else pytest.approx(2e-3))
    assert float(schedule(20)) == 0.0 and float(schedule(1000)) == 0.0


def test_schedule_follows_optimizer_iterations():
    optimizer = create_optimizer("adamw", 1e-3, 100, 10)
    variables = make_variables()
    for step in range(3):
        assert float(optimizer.learning_rate) == pytest.approx(recipe_lr(step, 1e-3, 100, 10))
        optimizer.apply([tf.ones_like(v) for v in variables], variables)


def expected_depth(path: str, num_layers: int) -> int:
    """Depth read off the path components (independently of the optimizer's regexes)."""
    parts = path.split("/")
    if "encoder" in parts:
        layer = parts[parts.index("encoder") + 1]
        assert layer.startswith("layer_")
        return int(layer[len("layer_"):]) + 1
    if "embeddings" in parts or "embeddings_project" in parts:
        return 0
    return num_layers + 2


def test_layerwise_multipliers_on_backbone():
    # 11 layers so that layer_1 and layer_10 must not be confused.
    num_layers = 11
    config = model_preset("small", num_hidden_layers=num_layers, vocab_size=40, hidden_size=16,
                          embedding_size=8, num_attention_heads=2, intermediate_size=32,
                          max_position_embeddings=16)
    backbone = Backbone(config)
    head = keras.layers.Dense(3, name="classifier")
    ids = tf.zeros((1, 8), tf.int32)
    head(backbone({"input_ids": ids, "input_mask": ids + 1, "segment_ids": ids})[:, 0])
    variables = backbone.trainable_variables + head.trainable_variables

    multipliers = layerwise_lr_multipliers(variables, num_layers, 0.8)
    assert set(multipliers) == {v.path for v in variables}
    depths = {expected_depth(v.path, num_layers) for v in variables}
    assert depths == set(range(num_layers + 1)) | {num_layers + 2}
    for v in variables:
        assert multipliers[v.path] == pytest.approx(
            0.8 ** (num_layers + 2 - expected_depth(v.path, num_layers)))
    assert multipliers["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 13)
    assert multipliers["electra/encoder/layer_10/output/dense/kernel"] == pytest.approx(0.8 ** 2)
    assert multipliers["classifier/kernel"] == 1.0

    # The optimizer applies them: with zero decay and equal gradients, every variable moves by
    # lr * multiplier * m / (sqrt(v) + eps) = lr * multiplier * sqrt(1000) * 0.1 on the first step.
    optimizer = create_optimizer("adamw", 1e-3, 10**9, 0, weight_decay=0.0,
                                 layerwise_lr_decay=0.8, num_layers=num_layers)
    before = [v.numpy() for v in variables]
    optimizer.apply([tf.ones_like(v) for v in variables], variables)
    assert [optimizer.lr_multiplier(v) for v in variables] == [multipliers[v.path]
                                                               for v in variables]
    for v, start in zip(variables, before):
        step = float(np.mean(start - v.numpy()))
        assert step == pytest.approx(1e-3 * multipliers[v.path] * 0.1 / (math.sqrt(1e-3) + 1e-6),
                                     rel=1e-3)


def test_layer_index_beyond_num_layers_is_an_error():
    with pytest.raises(ValueError, match="layer 12"):
        optimization.layer_depth("electra/encoder/layer_12/output/dense/kernel", 12)


def train_regression(strategy, jit_compile=False, clip=True, steps=3):
    """A few AdamW steps on a linear model, the global batch split over the replicas.

    clip: the gradients are clipped as the training loop clips them (loop.clip_gradients).
    """
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    # The two halves of the batch have very different gradient norms, so clipping each replica's
    # gradient separately (Keras' default order) would give a different update.
    y = np.concatenate([rng.normal(size=(4, 3)), 100 * rng.normal(size=(4, 3))]).astype(np.float32)
    with strategy.scope():
        variables = make_variables()
        optimizer = create_optimizer("adamw", 0.1, 10, 1, weight_decay=0.01)
        # Slots must exist before the first traced step (as in the training loop).
        optimizer.build(variables)
    per_replica = 8 // strategy.num_replicas_in_sync

    def shard(context):
        rows = slice(context.replica_id_in_sync_group * per_replica,
                     (context.replica_id_in_sync_group + 1) * per_replica)
        return tf.constant(x[rows]), tf.constant(y[rows])

    batch = strategy.experimental_distribute_values_from_function(shard)

    def replica_step(features, targets):
        with tf.GradientTape() as tape:
            kernel, gamma, beta, bias = variables
            hidden = tf.matmul(features, kernel) + bias
            pred = hidden * gamma + beta
            # Normalized by the GLOBAL batch, as the model contract prescribes.
            loss = tf.reduce_sum(tf.square(pred - targets)) / 8.0
        grads = tape.gradient(loss, variables)
        if clip:
            grads, _ = loop.clip_gradients(grads, 1.0)
        optimizer.apply(grads, variables)

    @tf.function(jit_compile=jit_compile)
    def train_step(batch):
        strategy.run(replica_step, args=batch)

    for _ in range(steps):
        train_step(batch)
    return [v.numpy() for v in variables]


def test_mirrored_matches_one_device():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        # The TF runtime was initialized before this module could add a second CPU device.
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"{__file__}::test_mirrored_matches_one_device"],
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))),
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    for clip in (False, True):
        one = train_regression(tf.distribute.OneDeviceStrategy("/cpu:0"), clip=clip)
        mirrored = train_regression(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
                                    clip=clip)
        for a, b in zip(one, mirrored):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        # And the single-device run is the recipe itself.
        assert not np.allclose(one[0], make_variables()[0].numpy())


def test_loss_scale_wrapper_gives_the_same_step():
    plain_vars, scaled_vars = make_variables(), make_variables()
    grads = random_grads(2)
    plain = create_optimizer("adamw", 0.1, 10, 0)
    # As the loop does for mixed_float16.
    scaled = keras.optimizers.LossScaleOptimizer(create_optimizer("adamw", 0.1, 10, 0))
    scaled.build(scaled_vars)
    scale = float(scaled.scale_loss(1.0))
    for step_grads in grads:
        plain.apply([tf.constant(g) for g in step_grads], plain_vars)
        scaled.apply([tf.constant(g * scale) for g in step_grads], scaled_vars)
    for a, b in zip(plain_vars, scaled_vars):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5)
    # A non-finite gradient skips the step (and halves the scale) instead of corrupting weights.
    before = [v.numpy() for v in scaled_vars]
    scaled.apply([tf.fill(v.shape, np.inf) for v in scaled_vars], scaled_vars)
    for v, start in zip(scaled_vars, before):
        np.testing.assert_array_equal(v.numpy(), start)


def test_config_round_trip():
    optimizer = create_optimizer("adamw", 1e-4, 1000, 100, weight_decay=0.01,
                                 layerwise_lr_decay=0.8, num_layers=12)
    restored = AdamWeightDecay.from_config(optimizer.get_config())
    assert restored.weight_decay_rate == 0.01 and restored.epsilon == 1e-6
    assert restored.layerwise_lr_decay == 0.8 and restored.num_layers == 12
    assert float(restored.learning_rate) == float(optimizer.learning_rate)
    lamb = create_optimizer("lamb", 1e-3, 1000, 100)
    assert isinstance(LambWeightDecay.from_config(lamb.get_config()), LambWeightDecay)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="sgd"), "unknown optimizer"),
    (dict(name="lamb", layerwise_lr_decay=0.8, num_layers=12), "adamw optimizer only"),
    (dict(name="adamw", layerwise_lr_decay=0.8), "given together"),
    (dict(name="adamw", layerwise_lr_decay=1.5, num_layers=12), r"in \(0, 1\]"),
    (dict(name="adamw", num_warmup_steps=-1), "num_warmup_steps"),
    (dict(name="adamw", num_train_steps=0), "num_train_steps"),
])
def test_bad_arguments(kwargs, message):
    arguments = dict(learning_rate=1e-3, num_train_steps=100, num_warmup_steps=10)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        create_optimizer(**arguments)


@pytest.mark.parametrize("cls", [AdamWeightDecay, LambWeightDecay])
@pytest.mark.parametrize("option", ["clipnorm", "global_clipnorm", "clipvalue"])
def test_keras_clipping_is_refused(cls, option):
    # Keras would clip each replica's part before its sum; the Trainer clips the sum.
    with pytest.raises(ValueError, match="the Trainer clips"):
        cls(learning_rate=1e-3, **{option: 1.0})
