"""The ELECTRA objective end to end: loss values recomputed in NumPy from the recipe's formulas,
labels when the generator reproduces the original, partition invariance, the stop_gradient
between generator and discriminator, XLA and model precision, and a discriminator that learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import DiscriminatorHead
from electra_tf.pretraining import masking, sampling
from electra_tf.pretraining.objective import ElectraPretrainer
from tests.electra_tf.checkpoint_io import numpy_electra
from tests.electra_tf.modeling.tiny import (
    CLS,
    FIRST_WORD,
    MASK,
    SEP,
    random_batch,
    take_rows,
    tiny_config,
    tiny_objective,
)

SEED = tf.constant([3, 4], tf.int32)


def make_model(seed=0, **overrides):
    return ElectraPretrainer(tiny_config(**overrides), tiny_objective(), seed=seed, mask_id=MASK,
                             cls_id=CLS, sep_id=SEP)


def randomize(model, seed=3):
    weights = numpy_electra.random_weights({v.path: v.shape for v in model.variables}, seed)
    for variable in model.variables:
        variable.assign(weights[variable.path])
    return weights


def numpy_of(out):
    return {k: v.numpy() for k, v in out.items() if isinstance(v, tf.Tensor)}


def total_loss(out):
    return sum(w * s / c for s, c, w in out["losses"].values())


def test_losses_and_metrics_match_numpy():
    model = make_model()
    weights = randomize(model)
    features = random_batch(4, 20, 97, seed=1)
    out = model(features)
    got = numpy_of(out)
    mask = features["input_mask"].numpy()
    segments = features["segment_ids"].numpy()
    positions, mlm_ids = got["masked_lm_positions"], got["masked_lm_ids"]
    mlm_weights = got["masked_lm_weights"]

    # Generator: mean NLL over the real masked slots only.
    gen_logits = numpy_electra.generator_logits(weights, got["masked_input_ids"], mask,
                                                segments, num_heads=1)
    gen_logits = np.take_along_axis(gen_logits, positions[..., None], axis=1).astype(np.float64)
    log_probs = gen_logits - np.log(np.exp(gen_logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, mlm_ids[..., None], axis=-1)[..., 0]
    mlm_loss = (nll * mlm_weights).sum() / mlm_weights.sum()

    # Discriminator: it sees the sampled ids; BCE over every real token, [CLS]/[SEP] included.
    disc_logits = numpy_electra.discriminator_logits(weights, got["sampled_ids"], mask, segments,
                                                     num_heads=2).astype(np.float64)
    labels = got["disc_labels"]
    probs = 1 / (1 + np.exp(-disc_logits))
    bce = -(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
    disc_loss = (bce * mask).sum() / mask.sum()

    sums = {k: (s.numpy(), c.numpy()) for k, (s, c, _) in out["losses"].items()}
    np.testing.assert_allclose(sums["masked_lm_loss"][0] / sums["masked_lm_loss"][1], mlm_loss,
                               rtol=1e-4)
    np.testing.assert_allclose(sums["disc_loss"][0] / sums["disc_loss"][1], disc_loss, rtol=1e-4)
    assert sums["disc_loss"][1] == mask.sum() and sums["masked_lm_loss"][1] == mlm_weights.sum()
    np.testing.assert_allclose(total_loss(out), 1.0 * mlm_loss + 50.0 * disc_loss, rtol=1e-4)

    preds = (disc_logits > 0).astype(int)
    correct = preds == labels
    expected_metrics = {
        "masked_lm_accuracy": ((gen_logits.argmax(-1) == mlm_ids) * mlm_weights).sum()
                              / mlm_weights.sum(),
        "masked_lm_loss": mlm_loss,
        "disc_loss": disc_loss,
        "disc_accuracy": (correct * mask).sum() / mask.sum(),
        "disc_precision": (correct * preds * mask).sum() / max((preds * mask).sum(), 1),
        "disc_recall": (correct * labels * mask).sum() / max((labels * mask).sum(), 1),
    }
    for name, value in expected_metrics.items():
        total, count = (t.numpy() for t in out["metrics"][name])
        np.testing.assert_allclose(total / max(count, 1), value, rtol=1e-4, atol=1e-6,
                                   err_msg=name)
    auc_labels, auc_probs, auc_weights = out["auc"]["disc_auc"]
    np.testing.assert_allclose(auc_probs, probs, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(auc_labels, labels)
    np.testing.assert_array_equal(auc_weights, mask)


def test_discriminator_input_and_labels():
    model = make_model()
    randomize(model)
    features = random_batch(6, 24, 97, seed=2)
    got = numpy_of(model(features))
    ids = features["input_ids"].numpy()
    chosen = np.zeros_like(ids, bool)
    for row in range(len(ids)):
        chosen[row, got["masked_lm_positions"][row][got["masked_lm_weights"][row] > 0]] = True
    # The discriminator sees the originals everywhere except the masked positions...
    np.testing.assert_array_equal(got["sampled_ids"][~chosen], ids[~chosen])
    # ...and is labelled "replaced" exactly where a sample differs from the original.
    np.testing.assert_array_equal(got["disc_labels"], chosen & (got["sampled_ids"] != ids))


@pytest.mark.parametrize("favourite", ["original", "other"])
def test_labels_when_the_generator_reproduces_the_original(favourite):
    model = make_model()
    original, other = FIRST_WORD + 7, FIRST_WORD + 9
    # A generator that puts (almost) all mass on one token: output_bias dominates its logits.
    target = original if favourite == "original" else other
    model.generator_head.output_bias.assign(tf.one_hot(target, 97) * 1000.0)
    features = random_batch(4, 24, 97, seed=3)
    ids = features["input_ids"].numpy()
    ids = np.where(np.isin(ids, [CLS, SEP, 0]), ids, original).astype(np.int32)
    features = dict(features, input_ids=tf.constant(ids))
    out = model(features)
    got = numpy_of(out)
    masked = np.zeros_like(ids, bool)
    for row in range(len(ids)):
        masked[row, got["masked_lm_positions"][row][got["masked_lm_weights"][row] > 0]] = True
    assert masked.sum() > 8
    sampled_accuracy = [t.numpy() for t in out["metrics"]["sampled_masked_lm_accuracy"]]
    if favourite == "original":
        np.testing.assert_array_equal(got["sampled_ids"], ids)
        assert got["disc_labels"].sum() == 0  # a correct sample is labelled "original"
        assert sampled_accuracy[0] == sampled_accuracy[1]
    else:
        np.testing.assert_array_equal(got["disc_labels"], masked.astype(np.int32))
        assert (got["sampled_ids"][masked] == other).all()
        assert sampled_accuracy[0] == 0


def test_partition_invariance():
    model = make_model(seed=9)
    randomize(model)
    features = random_batch(6, 24, 97, seed=4, first_index=600)
    whole = numpy_of(model(features))
    order = [4, 1, 5, 0, 2, 3]
    parts = [numpy_of(model(take_rows(features, order[:2]))),
             numpy_of(model(take_rows(features, order[2:])))]
    for key in ("masked_input_ids", "masked_lm_positions", "sampled_ids", "disc_labels"):
        np.testing.assert_array_equal(np.concatenate([parts[0][key], parts[1][key]]),
                                      whole[key][order], err_msg=key)


def test_no_gradient_from_discriminator_into_generator():
    model = make_model()
    randomize(model)
    features = random_batch(4, 20, 97, seed=5)
    with tf.GradientTape(persistent=True) as tape:
        out = model(features, training=True, dropout_seed=SEED)
        disc = out["losses"]["disc_loss"][0]
        mlm = out["losses"]["masked_lm_loss"][0]
    generator_vars = model.generator.encoder.trainable_variables
    assert all(g is None for g in tape.gradient(disc, generator_vars))
    assert all(g is None for g in tape.gradient(
        mlm, model.discriminator.encoder.trainable_variables))
    # The shared embeddings learn from both losses.
    for loss in (disc, mlm):
        grad = tape.gradient(loss, model.embeddings.word_embeddings)
        assert float(tf.norm(tf.convert_to_tensor(grad))) > 0


def test_compiled_training_step():
    model = make_model(num_hidden_layers=1)
    features = random_batch(4, 20, 97, seed=6)
    expected_masking = numpy_of(model(features))["masked_input_ids"]

    # A compiled training step (XLA): static shapes throughout, finite gradients.
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function(jit_compile=True)
    def train(features, seed):
        with tf.GradientTape() as tape:
            out = model(features, training=True, dropout_seed=seed)
            loss = total_loss(out)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return out, grads

    out, grads = train(features, SEED)
    for total, count, _ in out["losses"].values():
        assert total.dtype == tf.float32 and np.isfinite(total.numpy()) and count.numpy() > 0
    assert out["disc_probs"].dtype == tf.float32 and out["disc_probs"].shape == (4, 20)
    assert out["sampled_ids"].shape == (4, 20) and out["masked_lm_ids"].shape == (4, 4)
    assert all(v.dtype == "float32" for v in model.variables)
    assert all(np.isfinite(tf.convert_to_tensor(g).numpy()).all() for g in grads)
    # Masking is keyed by (seed, example_index) only: the same under XLA as in eager mode.
    np.testing.assert_array_equal(out["masked_input_ids"], expected_masking)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_pretrainer(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make_model(num_hidden_layers=1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    features = random_batch(2, 20, 97, seed=7)
    sequence = model.discriminator({k: features[k] for k in
                                    ("input_ids", "input_mask", "segment_ids")})
    assert sequence.dtype == policy.split("_")[1]
    out = model(features, training=True, dropout_seed=SEED)
    assert all(np.isfinite(s.numpy()) and s.dtype == tf.float32
               for s, _, _ in out["losses"].values())
    assert out["disc_probs"].dtype == tf.float32 and out["sampled_ids"].shape == (2, 20)
    assert all(v.dtype == "float32" for v in model.variables)


def test_discriminator_learns_uniformly_random_replacements():
    """docs/RECIPE.md: uniformly random fakes are learned within a few hundred steps."""
    config = tiny_config(num_hidden_layers=1, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)
    backbone = Backbone(config)
    head = DiscriminatorHead(config)
    variables = backbone.trainable_variables + head.trainable_variables
    optimizer = keras.optimizers.Adam(2e-3)
    vocab = config.vocab_size
    # Zipf-like "text": real tokens favour low ids; uniform fakes are mostly rare tokens.
    word_logits = tf.math.log(1.0 / tf.range(1.0, vocab - FIRST_WORD + 1.0) ** 1.3)[None]

    def batch(index):
        seed = tf.stack([index, 17])
        words = tf.random.stateless_categorical(word_logits, 32 * 24, seed)
        words = tf.cast(tf.reshape(words, (32, 24)), tf.int32) + FIRST_WORD
        words = tf.concat([tf.fill((32, 1), CLS), words[:, 1:-1], tf.fill((32, 1), SEP)], 1)
        input_mask = tf.ones_like(words)
        example_index = tf.cast(index, tf.int64) * 32 + tf.range(32, dtype=tf.int64)
        masked = masking.mask_inputs(words, input_mask, example_index, seed=1, mask_prob=0.15,
                                     max_predictions=4, mask_id=MASK, special_ids=(CLS, SEP))
        fakes = tf.random.stateless_uniform((32, 4), seed + 1, FIRST_WORD, vocab, tf.int32)
        ids, labels = sampling.replace_with_samples(
            words, masked["masked_lm_positions"], masked["masked_lm_weights"], fakes)
        return {"input_ids": ids, "input_mask": input_mask,
                "segment_ids": tf.zeros_like(ids)}, labels

    def logits_of(features):
        return head(backbone(features))

    @tf.function(jit_compile=True)
    def train(index):
        features, labels = batch(index)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                tf.cast(labels, tf.float32), logits_of(features)))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def held_out_auc():
        auc = keras.metrics.AUC()
        for index in range(10_000, 10_004):
            features, labels = batch(tf.constant(index))
            auc.update_state(labels, tf.sigmoid(logits_of(features)))
        return float(auc.result())

    before = held_out_auc()
    for index in range(300):
        train(tf.constant(index))
    after = held_out_auc()
    assert after > 0.9 and after > before + 0.2, (before, after)
