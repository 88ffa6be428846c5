"""The BERT encoder, embeddings and heads against an independent NumPy forward pass, plus the
recipe's details that a forward comparison would not catch: initializers, padding invisibility,
stateless dropout and mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.modeling import common
from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import DenseHead, DiscriminatorHead
from electra_tf.pretraining.objective import ElectraPretrainer
from tests.electra_tf.checkpoint_io import numpy_electra
from tests.electra_tf.modeling.tiny import CLS, MASK, SEP, random_batch, tiny_config, tiny_objective

SEED = tf.constant([7, 11], tf.int32)


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and always restores float32."""
    def set_policy(name):
        keras.mixed_precision.set_global_policy(name)
    yield set_policy
    keras.mixed_precision.set_global_policy("float32")


def _load(model, weights):
    for variable in model.variables:
        variable.assign(weights[variable.path])


def test_towers_and_heads_match_numpy_reference():
    config = tiny_config()
    model = ElectraPretrainer(config, tiny_objective(), seed=0, mask_id=MASK, cls_id=CLS,
                              sep_id=SEP)
    weights = numpy_electra.random_weights({v.path: v.shape for v in model.variables}, seed=3)
    _load(model, weights)
    w64 = {name: value.astype(np.float64) for name, value in weights.items()}
    batch = random_batch(3, 12, config.vocab_size, seed=1)
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    as_np = [np.asarray(batch[k], np.int64) for k in ("input_ids", "input_mask", "segment_ids")]
    mask = as_np[1].astype(bool)

    # float32 against float64: the logits are O(1-10), so 1e-5 leaves room for float32 rounding
    # only; a tanh-approximate GELU (up to 5e-4 off the exact one per activation) fails it.
    disc = model.discriminator_head(model.discriminator(inputs)).numpy()
    disc_expected = numpy_electra.discriminator_logits(w64, *as_np, num_heads=2)
    generator = model.generator(inputs)
    gen = model.generator_head(generator, model.embeddings.word_embeddings).numpy()
    gen_expected = numpy_electra.generator_logits(w64, *as_np, num_heads=1)
    disc_diff = np.abs(disc - disc_expected)[mask].max()
    gen_diff = np.abs(gen - gen_expected)[mask].max()
    print(f"parity: discriminator max |diff| {disc_diff:.2e}, generator {gen_diff:.2e}")
    assert disc_diff <= 1e-5 and gen_diff <= 1e-5, (disc_diff, gen_diff)
    assert disc_expected[mask].std() > 0.1 and gen_expected[mask].std() > 0.1


def test_initializers_follow_the_recipe():
    config = tiny_config(hidden_size=64, num_attention_heads=2, intermediate_size=128)
    backbone = Backbone(config)
    head = DiscriminatorHead(config)
    query = backbone.encoder.layers[0].query.kernel.numpy()
    # Truncated normal at 2 std: |w| <= 0.04 and std 0.02 * 0.88 (the truncation shrinks it).
    assert np.abs(query).max() <= 0.04 + 1e-7
    assert abs(query.std() - 0.0176) < 0.002
    assert np.abs(backbone.embeddings.word_embeddings.numpy()).max() <= 0.04 + 1e-7
    # Glorot uniform where the reference leaves TF1's default: limit sqrt(6 / (fan_in + fan_out)).
    project = backbone.embeddings_project.kernel.numpy()
    assert np.abs(project).max() > 0.1 and np.abs(project).max() <= np.sqrt(6 / (16 + 64))
    dense_1 = head.dense_1.kernel.numpy()
    assert np.abs(dense_1).max() <= np.sqrt(6 / 65) and np.abs(dense_1).max() > 0.1
    assert backbone.embeddings.layer_norm.epsilon == 1e-12


def test_padding_is_invisible_to_real_tokens():
    config = tiny_config()
    backbone = Backbone(config)
    batch = random_batch(2, 16, config.vocab_size, seed=2, min_length=8)
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    # Other ids and segments on the padding must not change any real token's output.
    noise = tf.random.stateless_uniform((2, 16), (1, 2), 5, config.vocab_size, tf.int32)
    padded = tf.cast(batch["input_mask"], tf.bool)
    changed = dict(inputs, input_ids=tf.where(padded, inputs["input_ids"], noise),
                   segment_ids=tf.where(padded, inputs["segment_ids"], 1))
    mask = batch["input_mask"].numpy().astype(bool)
    np.testing.assert_allclose(backbone(inputs).numpy()[mask], backbone(changed).numpy()[mask],
                               rtol=1e-5, atol=1e-5)


def test_dropout_is_stateless_and_keyed_by_seed():
    config = tiny_config()
    backbone = Backbone(config)
    batch = random_batch(4, 16, config.vocab_size, seed=3)
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    first = backbone(inputs, training=True, dropout_seed=SEED)
    np.testing.assert_array_equal(first, backbone(inputs, training=True, dropout_seed=SEED))
    other = backbone(inputs, training=True, dropout_seed=tf.constant([7, 12]))
    assert np.abs(first - other).max() > 1e-3
    inference = backbone(inputs, training=False, dropout_seed=SEED)
    np.testing.assert_array_equal(inference, backbone(inputs))
    with pytest.raises(ValueError, match="dropout_seed"):
        backbone(inputs, training=True)


def test_dropout_rate_scale_and_distinct_sites():
    x = tf.ones((64, 128))
    dropped = common.dropout(x, 0.1, True, SEED, site=5).numpy()
    kept = dropped != 0
    assert abs(kept.mean() - 0.9) < 0.01  # 8,192 draws: 4 sigma is 0.013
    np.testing.assert_allclose(dropped[kept], 1 / 0.9, rtol=1e-6)
    other_site = common.dropout(x, 0.1, True, SEED, site=6).numpy() != 0
    assert (other_site != kept).mean() > 0.1  # independent masks disagree on ~18%


def test_keep_mask_is_deterministic_and_identical_under_xla():
    keep = common.keep_mask((64, 128), 0.1, SEED).numpy()
    assert abs(keep.mean() - 0.9) < 0.01
    np.testing.assert_array_equal(keep, common.keep_mask((64, 128), 0.1, SEED))
    compiled = tf.function(lambda seed: common.keep_mask((64, 128), 0.1, seed), jit_compile=True)
    np.testing.assert_array_equal(keep, compiled(SEED))
    other = common.keep_mask((64, 128), 0.1, common.fold_seed(SEED, 1)).numpy()
    assert 0.12 < (other != keep).mean() < 0.24  # independent masks disagree on 18%


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_dtypes(policy, name):
    policy(name)
    compute = name.split("_")[1]
    config = tiny_config()
    backbone = Backbone(config)
    batch = random_batch(2, 16, config.vocab_size, seed=4)
    inputs = {k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")}
    sequence = backbone(inputs, training=True, dropout_seed=SEED)
    assert sequence.dtype == compute and sequence.shape == (2, 16, 32)
    assert all(v.dtype == "float32" for v in backbone.variables)
    logits = [DenseHead(config, 3, "classifier")(sequence),
              DenseHead(config, 4, "tagger", per_token=True)(sequence),
              DiscriminatorHead(config)(sequence)]
    assert [x.shape for x in logits] == [(2, 3), (2, 16, 4), (2, 16)]
    assert all(x.dtype == "float32" for x in logits)
    assert np.isfinite(sequence.numpy().astype(np.float32)).all()
