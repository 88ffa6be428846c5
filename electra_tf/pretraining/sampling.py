"""Steps 3-4 of the ELECTRA pre-training step: Gumbel-max sampling from the generator and the
discriminator's input and labels.

A sample is argmax(logits / temperature + g) with g = -log(-log(u)) standard Gumbel noise, under
stop_gradient (no gradient flows from the discriminator into the generator). u is a counter-based
hash of (seed, example_index, slot * vocab_size + token id), so an example's sample does not
depend on how the global batch was split across replicas.

The noise and the argmax run as one XLA cluster (a nested jit_compile function, also when the
surrounding step is not compiled): unfused, the [B, N, V] noise would take ~17 memory passes per
step (74M elements each for ELECTRA-Small at batch 128); fused, it is one pass over the logits.
"""

import tensorflow as tf

from electra_tf.modeling import counter_hash


def gumbel_from_bits(bits: tf.Tensor) -> tf.Tensor:
    """Standard Gumbel noise -log(-log(u)) of uint32 hash bits, u = counter_hash.to_uniform(bits)
    strictly inside (0, 1), so the noise is finite: from -2.81 (u = 2^-24) to 16.64
    (u = 1 - 2^-24)."""
    return -tf.math.log(-tf.math.log(counter_hash.to_uniform(bits)))


def _noise_from_keys(keys: tf.Tensor, num_slots: int, vocab_size: int) -> tf.Tensor:
    if num_slots * vocab_size >= 2 ** 31:
        raise ValueError(f"num_slots * vocab_size = {num_slots * vocab_size} overflows int32")
    counters = tf.reshape(tf.range(num_slots * vocab_size, dtype=tf.int32),
                          [num_slots, vocab_size])
    return gumbel_from_bits(counter_hash.hash_counters(keys, counters))


def gumbel_noise(example_index: tf.Tensor, num_slots: int, vocab_size: int,
                 seed: int) -> tf.Tensor:
    """The standard Gumbel noise [B, num_slots, vocab_size] that `gumbel_max_sample` adds."""
    keys = counter_hash.row_keys(seed, counter_hash.STREAM_GUMBEL, example_index)
    return _fused_noise(keys, num_slots, vocab_size)


@tf.function(jit_compile=True)
def _fused_noise(keys, num_slots, vocab_size):
    return _noise_from_keys(keys, num_slots, vocab_size)


@tf.function(jit_compile=True)
def _fused_gumbel_argmax(logits, keys, temperature):
    _, num_slots, vocab_size = logits.shape
    perturbed = logits / temperature + _noise_from_keys(keys, num_slots, vocab_size)
    # argmax as max, then the first index that reaches it: XLA:CPU vectorizes these two plain
    # reductions but not its variadic argmax reduction (2x faster here, same result).
    best = tf.reduce_max(perturbed, axis=-1, keepdims=True)
    vocab = tf.range(vocab_size, dtype=tf.int32)
    return tf.reduce_min(tf.where(perturbed == best, vocab, vocab_size), axis=-1)


def gumbel_max_sample(logits: tf.Tensor, example_index: tf.Tensor, *, seed: int,
                      temperature: float = 1.0) -> tf.Tensor:
    """int32 [B, N] samples from softmax(logits / temperature), logits [B, N, V] (static N, V)."""
    logits = tf.stop_gradient(tf.cast(logits, tf.float32))
    keys = counter_hash.row_keys(seed, counter_hash.STREAM_GUMBEL, example_index)
    return _fused_gumbel_argmax(logits, keys, tf.constant(temperature, tf.float32))


def replace_with_samples(input_ids: tf.Tensor, masked_lm_positions: tf.Tensor,
                         masked_lm_weights: tf.Tensor, sampled_ids: tf.Tensor):
    """Puts the samples at the used masked positions of the ORIGINAL input_ids.

    Returns (discriminator input ids int32 [B, T], labels int32 [B, T]), where a label is 1 only
    where the position was masked AND the sample differs from the original token: a sample that
    happens to equal the original is labelled "original", as in the reference.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    seq_length = input_ids.shape[1]
    # [B, N, T] one-hot of the used slots; tiny (N * T per example), and XLA-friendly unlike a
    # scatter whose unused slots would all point at position 0.
    hits = (tf.equal(masked_lm_positions[:, :, tf.newaxis],
                     tf.range(seq_length, dtype=tf.int32))
            & (masked_lm_weights > 0)[:, :, tf.newaxis])
    replaced = tf.reduce_any(hits, axis=1)
    sampled_at = tf.reduce_sum(tf.where(hits, sampled_ids[:, :, tf.newaxis], 0), axis=1)
    updated = tf.where(replaced, sampled_at, input_ids)
    labels = tf.cast(replaced & tf.not_equal(updated, input_ids), tf.int32)
    return updated, labels
