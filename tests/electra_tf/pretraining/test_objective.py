"""The ELECTRA objective end to end: masking, samples, labels, losses, metrics and disc_auc derived
independently in NumPy from the recipe and the hash's documented rule, labels when the generator
reproduces the original, partition invariance, gradient routing between generator, discriminator
and the shared embeddings, XLA and mixed precision against float32, and a discriminator that
learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import DiscriminatorHead
from electra_tf.pretraining import masking, sampling
from electra_tf.pretraining.objective import ElectraPretrainer
from electra_tf.training import distribute, loop
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
from tests.electra_tf.pretraining import numpy_randomness

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


def _reported_eval(model_fn, features, directory):
    """The metrics the Trainer reports for one evaluation batch (its 1,000-bin AUC included)."""
    keras.utils.set_random_seed(0)
    trainer = loop.Trainer(
        strategy=distribute.create_strategy("one_device"), model_fn=model_fn,
        optimizer_fn=lambda: keras.optimizers.SGD(0.0),
        eval_input_fn=lambda batch_size, context: tf.data.Dataset.from_tensors(features).repeat(),
        model_dir=str(directory), train_batch_size=len(features["example_index"]),
        log_fn=lambda line: None)
    return trainer.evaluate(1)


def _rank_auc(scores, labels):
    """P(score of a replaced token > score of an original one), ties counted half."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None]).sum()
    ties = (positive[:, None] == negative[None]).sum()
    return (greater + 0.5 * ties) / (len(positive) * len(negative))


def test_masking_sampling_labels_losses_and_auc_derived_independently(tmp_path):
    """Every intermediate of the step is recomputed in NumPy from the recipe and the hash's
    documented rule (tests/electra_tf/pretraining/numpy_randomness.py), none read back from the
    model: masked positions, [MASK]/kept, generator logits + Gumbel noise -> samples, labels,
    discriminator logits, losses, metrics and the reported disc_auc."""
    seed, batch, length = 11, 8, 24
    objective = tiny_objective()
    weights = {}

    def model_fn():
        model = make_model(seed=seed)
        weights.update(randomize(model))
        return model

    features = random_batch(batch, length, 97, seed=1, first_index=2 ** 33 + 5)
    reported = _reported_eval(model_fn, features, tmp_path)
    model = make_model(seed=seed)
    for variable in model.variables:
        variable.assign(weights[variable.path])
    got = numpy_of(model(features))
    w64 = {name: value.astype(np.float64) for name, value in weights.items()}
    ids, mask, segments = (features[k].numpy().astype(np.int64)
                           for k in ("input_ids", "input_mask", "segment_ids"))
    index = features["example_index"].numpy()

    # Step 1: masking from the keyed hash.
    masked, positions, mlm_weights = numpy_randomness.mask(
        ids, mask, index, seed=seed, mask_prob=objective.mask_prob,
        max_predictions=objective.max_predictions_per_seq, mask_id=MASK,
        special_ids=(CLS, SEP, MASK))
    np.testing.assert_array_equal(got["masked_input_ids"], masked)
    np.testing.assert_array_equal(got["masked_lm_positions"], positions)
    at_slots = np.take_along_axis(masked, positions, axis=1)[mlm_weights > 0]
    assert (at_slots == MASK).sum() > 10 and (at_slots != MASK).any()  # [MASK] and kept both

    # Step 2: the generator's logits at the masked slots (NumPy forward pass).
    gen_logits = numpy_electra.generator_logits(w64, masked, mask, segments, num_heads=1)
    gen_logits = np.take_along_axis(gen_logits, positions[..., None], axis=1)
    log_probs = gen_logits - np.log(np.exp(gen_logits).sum(-1, keepdims=True))
    mlm_ids = np.take_along_axis(ids, positions, axis=1)
    nll = -np.take_along_axis(log_probs, mlm_ids[..., None], axis=-1)[..., 0]
    mlm_loss = (nll * mlm_weights).sum() / mlm_weights.sum()

    # Step 3: Gumbel-max on logits / temperature 1, noise from the keyed hash.
    perturbed = gen_logits + numpy_randomness.gumbel(index, positions.shape[1], 97, seed)
    top2 = np.sort(perturbed, axis=-1)[..., -2:]
    assert (top2[..., 1] - top2[..., 0])[mlm_weights > 0].min() > 1e-4  # no float32 near-tie
    samples = perturbed.argmax(-1)
    disc_input = ids.copy()
    for row in range(batch):
        used = mlm_weights[row] > 0
        disc_input[row, positions[row][used]] = samples[row][used]
    # Step 4: replaced = masked and the sample differs from the original.
    labels = (disc_input != ids).astype(np.int64)
    np.testing.assert_array_equal(got["sampled_ids"], disc_input)
    np.testing.assert_array_equal(got["disc_labels"], labels)
    assert labels.sum() >= 3  # (a sample equal to its original: the test below)

    # Step 5-6: the discriminator's BCE over real tokens, total 1 x MLM + 50 x disc.
    disc_logits = numpy_electra.discriminator_logits(w64, disc_input, mask, segments,
                                                     num_heads=2)
    probs = 1 / (1 + np.exp(-disc_logits))
    bce = -(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
    disc_loss = (bce * mask).sum() / mask.sum()
    out = model(features)
    sums = {k: (s.numpy(), c.numpy()) for k, (s, c, _) in out["losses"].items()}
    np.testing.assert_allclose(sums["masked_lm_loss"][0] / sums["masked_lm_loss"][1], mlm_loss,
                               rtol=1e-5)
    np.testing.assert_allclose(sums["disc_loss"][0] / sums["disc_loss"][1], disc_loss, rtol=1e-5)
    assert sums["disc_loss"][1] == mask.sum() and sums["masked_lm_loss"][1] == mlm_weights.sum()
    np.testing.assert_allclose(total_loss(out), 1.0 * mlm_loss + 50.0 * disc_loss, rtol=1e-5)

    preds = (disc_logits > 0).astype(int)
    correct = preds == labels
    real = mask == 1
    expected = {
        "loss": 1.0 * mlm_loss + 50.0 * disc_loss,
        "masked_lm_accuracy": ((gen_logits.argmax(-1) == mlm_ids) * mlm_weights).sum()
                              / mlm_weights.sum(),
        "sampled_masked_lm_accuracy": ((samples == mlm_ids) * mlm_weights).sum()
                                      / mlm_weights.sum(),
        "masked_lm_loss": mlm_loss,
        "disc_loss": disc_loss,
        "disc_accuracy": correct[real].mean(),
        "disc_precision": correct[real & (preds == 1)].mean(),
        "disc_recall": correct[real & (labels == 1)].mean(),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(reported[name], value, rtol=1e-5, atol=1e-7, err_msg=name)

    # disc_auc: the rank statistic over real tokens. The reported one bins the scores into
    # 1,000 bins and counts pairs within a bin as ties, so it may differ from the exact one by
    # at most half the fraction of (replaced, original) pairs closer than a bin width.
    exact = _rank_auc(probs[real], labels[real])
    positive, negative = probs[real][labels[real] == 1], probs[real][labels[real] == 0]
    close = (np.abs(positive[:, None] - negative[None]) < 1e-3 + 1e-6).mean()
    print(f"disc_auc: exact {exact:.4f}, reported {reported['disc_auc']:.4f}, "
          f"bound {0.5 * close:.4f}")
    assert 0.1 < exact < 0.9 and close < 0.05
    assert abs(reported["disc_auc"] - exact) <= 0.5 * close + 1e-9, (reported["disc_auc"], exact)


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


def _dense_grads(tape, loss, variables):
    return [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
            for g, v in zip(tape.gradient(loss, variables), variables)]


def test_gradient_routing_against_the_single_losses():
    """RECIPE.md steps 2-3 and 6: the generator's own weights learn from the MLM loss only (the
    samples are under stop_gradient), the discriminator's from its loss only, the shared
    embeddings block from both, and the total is 1 x MLM + 50 x disc."""
    model = make_model()
    randomize(model)
    features = random_batch(4, 20, 97, seed=5)
    with tf.GradientTape(persistent=True) as tape:
        out = model(features, training=True, dropout_seed=SEED)
        mlm = out["losses"]["masked_lm_loss"][0] / out["losses"]["masked_lm_loss"][1]
        disc = out["losses"]["disc_loss"][0] / out["losses"]["disc_loss"][1]
        total = total_loss(out)
    shared = model.embeddings.trainable_variables
    shared_ids = {id(v) for v in shared}
    generator = [v for v in (model.generator.trainable_variables
                             + model.generator_head.trainable_variables)
                 if id(v) not in shared_ids]
    discriminator = [v for v in (model.discriminator.trainable_variables
                                 + model.discriminator_head.trainable_variables)
                     if id(v) not in shared_ids]
    assert len(shared) == 5 and len(generator) + len(discriminator) + 5 == len(
        model.trainable_variables)
    # float32 rounding of sums taken in another order: 1e-6 of the group's largest gradient
    # (the key biases' true gradient is 0, softmax being shift-invariant: theirs is all noise).
    for group, own, other, weight in ((generator, mlm, disc, 1.0),
                                      (discriminator, disc, mlm, 50.0)):
        totals, owns = _dense_grads(tape, total, group), _dense_grads(tape, own, group)
        scale = max(np.abs(g).max() for g in totals)
        for variable, g_total, g_own, g_other in zip(group, totals, owns,
                                                     _dense_grads(tape, other, group)):
            assert np.abs(g_own).max() > 0, variable.path
            np.testing.assert_array_equal(g_other, 0, err_msg=variable.path)
            np.testing.assert_allclose(g_total, weight * g_own, rtol=1e-5, atol=1e-6 * scale,
                                       err_msg=variable.path)
    totals = _dense_grads(tape, total, shared)
    scale = max(np.abs(g).max() for g in totals)
    for variable, g_total, g_mlm, g_disc in zip(shared, totals, _dense_grads(tape, mlm, shared),
                                                _dense_grads(tape, disc, shared)):
        assert np.abs(g_mlm).max() > 0 and np.abs(g_disc).max() > 0, variable.path
        np.testing.assert_allclose(g_total, g_mlm + 50.0 * g_disc, rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=variable.path)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_pretrainer(policy):
    """Same weights and batch (and dropout masks, a function of the seed only): the losses of a
    mixed-precision model are within 2e-2 relative of float32's."""
    reference = make_model()
    weights = randomize(reference)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make_model()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for variable in model.variables:
        variable.assign(weights[variable.path])
    features = random_batch(8, 20, 97, seed=7)
    sequence = model.discriminator({k: features[k] for k in
                                    ("input_ids", "input_mask", "segment_ids")})
    assert sequence.dtype == policy.split("_")[1]
    out = model(features, training=True, dropout_seed=SEED)
    assert all(np.isfinite(s.numpy()) and s.dtype == tf.float32
               for s, _, _ in out["losses"].values())
    assert out["disc_probs"].dtype == tf.float32 and out["sampled_ids"].shape == (8, 20)
    assert all(v.dtype == "float32" for v in model.variables)
    expected = reference(features, training=True, dropout_seed=SEED)
    for name in ("masked_lm_loss", "disc_loss"):
        got_sum, got_count, _ = out["losses"][name]
        want_sum, want_count, _ = expected["losses"][name]
        np.testing.assert_allclose(got_sum / got_count, want_sum / want_count, rtol=2e-2,
                                   err_msg=name)
    print(f"{policy}: total loss {float(total_loss(out)):.4f} against float32 "
          f"{float(total_loss(expected)):.4f}")
    np.testing.assert_allclose(total_loss(out), total_loss(expected), rtol=2e-2)


def test_losses_and_gradients_are_the_same_with_and_without_xla():
    """README: the dropout masks (and masking and sampling) are the same with and without
    jit_compile, so a training step's losses and gradients agree within 1e-5; the compiled step
    has static shapes throughout and keeps float32 variables."""
    model = make_model(num_hidden_layers=1)
    randomize(model)
    features = random_batch(4, 20, 97, seed=8)

    def step(features, seed):
        with tf.GradientTape() as tape:
            out = model(features, training=True, dropout_seed=seed)
            loss = total_loss(out)
        grads = tape.gradient(loss, model.trainable_variables)
        losses = {k: s / c for k, (s, c, _) in out["losses"].items()}
        return losses, [tf.convert_to_tensor(g) for g in grads], out

    plain_step = tf.function(step)
    plain = plain_step(features, SEED)
    compiled = tf.function(step, jit_compile=True)(features, SEED)
    out = compiled[2]
    assert out["disc_probs"].dtype == tf.float32 and out["disc_probs"].shape == (4, 20)
    assert out["sampled_ids"].shape == (4, 20) and out["masked_lm_ids"].shape == (4, 4)
    assert all(v.dtype == "float32" for v in model.variables)
    for key in ("masked_input_ids", "sampled_ids"):
        np.testing.assert_array_equal(out[key], plain[2][key], err_msg=key)
    loss_diff = max(abs(float(compiled[0][k]) / float(plain[0][k]) - 1) for k in plain[0])
    scale = max(float(tf.reduce_max(tf.abs(g))) for g in plain[1])
    grad_diff = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(plain[1], compiled[1]))
    print(f"XLA vs graph: losses {loss_diff:.1e} relative, gradients max |diff| {grad_diff:.1e} "
          f"(largest gradient {scale:.2f})")
    for name in plain[0]:
        np.testing.assert_allclose(compiled[0][name], plain[0][name], rtol=1e-5, err_msg=name)
    for variable, want, got in zip(model.trainable_variables, plain[1], compiled[1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                   err_msg=variable.path)
    # Dropout is on: another seed gives other losses.
    other = plain_step(features, SEED + 1)
    assert abs(float(other[0]["disc_loss"]) - float(plain[0]["disc_loss"])) > 1e-4


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
