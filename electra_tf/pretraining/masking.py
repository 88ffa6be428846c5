"""Step 1 of the ELECTRA pre-training step: choosing and masking positions, on the fly.

Candidates are real tokens (input_mask == 1) other than [CLS], [SEP] and [MASK]. Each example
gets n = max(1, min(N, round(sum(input_mask) * mask_prob))) positions, N being
max_predictions_per_seq (fewer only if it has fewer candidates). Of the chosen positions 85%
become [MASK] and 15% keep their token; ELECTRA does no random-token replacement.

Deliberate improvement over the reference: positions are drawn WITHOUT replacement (the
reference samples with replacement and so occasionally masks fewer than n distinct positions,
predicting a duplicate twice). Here each candidate gets a random score and the n highest-scoring
ones are taken, so exactly n distinct positions are predicted.

All randomness is a function of (seed, example_index, position), so an example is masked the
same way however the global batch is split across replicas.
"""

import tensorflow as tf

from electra_tf.modeling import counter_hash

# Fraction of the chosen positions replaced by [MASK]; the rest keep their original token.
MASK_TOKEN_FRACTION = 0.85


def num_to_predict(input_mask: tf.Tensor, mask_prob: float, max_predictions: int) -> tf.Tensor:
    """int32 [B]: n = max(1, min(N, round(sum(input_mask) * mask_prob))), as the reference
    computes it (float32 product, round half to even)."""
    num_tokens = tf.cast(tf.reduce_sum(tf.cast(input_mask, tf.int32), axis=-1), tf.float32)
    rounded = tf.cast(tf.round(num_tokens * tf.constant(mask_prob, tf.float32)), tf.int32)
    return tf.maximum(1, tf.minimum(max_predictions, rounded))


def mask_inputs(input_ids: tf.Tensor, input_mask: tf.Tensor, example_index: tf.Tensor, *,
                seed: int, mask_prob: float, max_predictions: int, mask_id: int,
                special_ids) -> dict:
    """Chooses and masks positions.

    Args:
      input_ids, input_mask: int [B, T].
      example_index: int64 [B], the example's index in the global stream (keys the randomness).
      seed: the run's seed (Python int).
      max_predictions: N, the static number of prediction slots per example.
      special_ids: token ids that are never chosen ([CLS], [SEP], [MASK]).

    Returns a dict of
      masked_input_ids int32 [B, T]: input_ids with [MASK] at 85% of the chosen positions;
      masked_lm_positions int32 [B, N]: chosen positions, 0 in unused slots;
      masked_lm_ids int32 [B, N]: original tokens there, 0 in unused slots;
      masked_lm_weights float32 [B, N]: 1.0 for used slots, 0.0 otherwise;
      is_masked bool [B, T]: True at the chosen positions.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    seq_length = input_ids.shape[1]
    if seq_length is None:
        raise ValueError("masking needs a static sequence length")
    candidate = tf.cast(input_mask, tf.bool)
    for token_id in special_ids:
        candidate &= tf.not_equal(input_ids, token_id)

    positions = tf.range(seq_length, dtype=tf.int32)
    keys = counter_hash.row_keys(seed, counter_hash.STREAM_MASK_POSITIONS, example_index)
    bits = counter_hash.hash_counters(keys, positions)
    # Scores are random in the high bits and the position in the low bits, so no two positions of
    # a row tie and top_k's order is a pure function of the hash. Non-candidates score -1.
    position_bits = max(1, (seq_length - 1).bit_length())
    random_part = tf.cast(tf.bitwise.right_shift(bits, tf.constant(1 + position_bits, tf.uint32)),
                          tf.int32)
    scores = tf.bitwise.left_shift(random_part, position_bits) + positions
    scores = tf.where(candidate, scores, -1)
    top_scores, top_positions = tf.math.top_k(scores, k=max_predictions, sorted=True)

    wanted = num_to_predict(input_mask, mask_prob, max_predictions)
    slot = tf.range(max_predictions, dtype=tf.int32)
    used = (slot[tf.newaxis, :] < wanted[:, tf.newaxis]) & (top_scores >= 0)
    masked_lm_positions = tf.where(used, top_positions, 0)
    masked_lm_ids = tf.where(used, tf.gather(input_ids, top_positions, batch_dims=1), 0)
    masked_lm_weights = tf.cast(used, tf.float32)

    is_masked = tf.reduce_any(
        tf.equal(masked_lm_positions[:, :, tf.newaxis], positions) & used[:, :, tf.newaxis],
        axis=1)
    replace_keys = counter_hash.row_keys(seed, counter_hash.STREAM_MASK_REPLACE, example_index)
    replace = counter_hash.to_uniform(
        counter_hash.hash_counters(replace_keys, positions)) < MASK_TOKEN_FRACTION
    masked_input_ids = tf.where(is_masked & replace, mask_id, input_ids)
    return {
        "masked_input_ids": masked_input_ids,
        "masked_lm_positions": masked_lm_positions,
        "masked_lm_ids": masked_lm_ids,
        "masked_lm_weights": masked_lm_weights,
        "is_masked": is_masked,
    }
