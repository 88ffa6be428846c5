"""Steps 3-4 of the recipe: Gumbel-max sampling and the discriminator's input and labels."""

import numpy as np
import tensorflow as tf

from electra_tf.modeling import counter_hash
from electra_tf.pretraining import sampling


def test_gumbel_max_samples_follow_the_softmax_at_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.5, (1, 3, 12)).astype(np.float32)
    examples = 4000
    tiled = tf.constant(np.repeat(logits, examples, axis=0))
    index = tf.range(examples, dtype=tf.int64)
    for temperature in (1.0, 0.5):
        samples = sampling.gumbel_max_sample(tiled, index, seed=5,
                                             temperature=temperature).numpy()
        scaled = logits[0] / temperature
        probs = np.exp(scaled - scaled.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        for slot in range(3):
            counts = np.bincount(samples[:, slot], minlength=12)
            expected = probs[slot] * examples
            keep = expected > 5
            chi2 = (((counts - expected) ** 2)[keep] / expected[keep]).sum()
            # 11 degrees of freedom at most: P(chi2 > 35) < 0.0003.
            assert chi2 < 35, (temperature, slot, counts, expected.round())


def test_noise_is_gumbel_and_keyed_per_example():
    noise = sampling.gumbel_noise(tf.constant([3, 9], tf.int64), 4, 5000, seed=1).numpy()
    # Standard Gumbel: mean = Euler-Mascheroni, variance pi^2 / 6.
    assert abs(noise.mean() - 0.5772) < 0.02 and abs(noise.var() - np.pi ** 2 / 6) < 0.06
    alone = sampling.gumbel_noise(tf.constant([9], tf.int64), 4, 5000, seed=1).numpy()
    np.testing.assert_array_equal(alone[0], noise[1])
    assert np.corrcoef(noise[0].ravel(), noise[1].ravel())[0, 1] < 0.03


def test_sampling_is_cut_from_the_gradient():
    logits = tf.Variable(tf.random.normal((2, 3, 7)))
    with tf.GradientTape() as tape:
        samples = sampling.gumbel_max_sample(logits, tf.constant([0, 1], tf.int64), seed=0)
        loss = tf.reduce_sum(tf.cast(samples, tf.float32))
    assert tape.gradient(loss, logits) is None


def test_replace_with_samples_labels():
    input_ids = tf.constant([[2, 10, 11, 12, 13, 3], [2, 20, 21, 3, 0, 0]])
    positions = tf.constant([[1, 3, 0], [2, 0, 0]])
    weights = tf.constant([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # Row 0: position 1 sampled as a different token, position 3 sampled as its own original;
    # the unused slot (position 0, sample 99) must not touch [CLS].
    samples = tf.constant([[50, 12, 99], [21, 77, 77]])
    updated, labels = sampling.replace_with_samples(input_ids, positions, weights, samples)
    np.testing.assert_array_equal(updated, [[2, 50, 11, 12, 13, 3], [2, 20, 21, 3, 0, 0]])
    np.testing.assert_array_equal(labels, [[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])


def test_hash_matches_python_reference_and_is_uniform():
    values = np.random.default_rng(1).integers(0, 2 ** 32, 1000, dtype=np.uint64)
    got = counter_hash.mix32(tf.constant(values.astype(np.uint32))).numpy()
    np.testing.assert_array_equal(got, [counter_hash.mix_python(int(v)) for v in values])
    uniform = counter_hash.to_uniform(counter_hash.hash_counters(
        counter_hash.row_keys(7, 1, tf.range(64, dtype=tf.int64)), tf.range(1000))).numpy()
    assert uniform.min() > 0 and uniform.max() < 1
    counts = np.histogram(uniform, bins=20, range=(0, 1))[0]
    expected = uniform.size / 20
    assert (((counts - expected) ** 2) / expected).sum() < 50  # 19 dof: P(> 50) ~ 1e-4


def test_uniform_and_gumbel_noise_are_finite_at_every_bit_pattern():
    # The rule (counter_hash.to_uniform's docstring): u = (k + 0.5) * 2^-23, k the top 23 bits.
    # The extreme patterns first: u must stay strictly inside (0, 1), where 24-bit midpoints
    # rounded the top one to exactly 1.0 in float32 and made the noise +inf.
    extremes = counter_hash.to_uniform(tf.constant([0, 0xFFFFFFFF], tf.uint32)).numpy()
    assert extremes.dtype == np.float32
    np.testing.assert_array_equal(extremes.astype(np.float64), [2.0 ** -24, 1 - 2.0 ** -24])
    noise = sampling.gumbel_from_bits(tf.constant([0, 0xFFFFFFFF], tf.uint32)).numpy()
    np.testing.assert_allclose(noise, [-np.log(24 * np.log(2)), -np.log(-np.log1p(-2.0 ** -24))],
                               rtol=1e-5)  # -2.8118 and 16.6355
    # Then every top-24-bit pattern, with its low bits all ones and all zeros.
    # The exact values also say the distribution is uniform: each of the 2^23 values of u comes
    # from exactly 2^9 of the 2^32 patterns, and their mean is exactly 1/2.
    step = 1 << 22
    for start in range(0, 1 << 24, step):
        top = np.arange(start, start + step, dtype=np.uint64)
        for low in (0, 0xFF):
            bits = tf.constant(((top << 8) | low).astype(np.uint32))
            u = counter_hash.to_uniform(bits).numpy().astype(np.float64)
            np.testing.assert_array_equal(u, ((top >> 1) + 0.5) * 2.0 ** -23)
            assert u.min() > 0 and u.max() < 1
            assert np.isfinite(sampling.gumbel_from_bits(bits).numpy()).all()
