"""Step 1 of the recipe: which positions are masked, how many, and how."""

import numpy as np
import tensorflow as tf

from electra_tf.pretraining import masking
from tests.electra_tf.modeling.tiny import CLS, MASK, SEP, random_batch, take_rows

N = 6
MASK_PROB = 0.15


def run_masking(features, seed=1, mask_prob=MASK_PROB, max_predictions=N):
    out = masking.mask_inputs(
        features["input_ids"], features["input_mask"], features["example_index"], seed=seed,
        mask_prob=mask_prob, max_predictions=max_predictions, mask_id=MASK,
        special_ids=(CLS, SEP, MASK))
    return {k: v.numpy() for k, v in out.items()}


def expected_count(input_mask, mask_prob, max_predictions):
    # The recipe's formula in NumPy: float32 product, round half to even.
    num_tokens = input_mask.sum(-1).astype(np.float32)
    wanted = np.round(num_tokens * np.float32(mask_prob)).astype(np.int64)
    return np.maximum(1, np.minimum(max_predictions, wanted))


def test_counts_exclusions_and_no_duplicates():
    features = random_batch(300, 40, 50, seed=0, min_length=4)
    # Rows with fewer candidates than n: only specials, and one word among [MASK]s.
    short = np.zeros((2, 40), np.int32)
    short[0, :4] = [CLS, SEP, SEP, 0]
    short[1, :14] = [CLS] + [MASK] * 6 + [9] + [MASK] * 5 + [SEP]
    features = {
        "input_ids": tf.concat([features["input_ids"], short], 0),
        "input_mask": tf.concat([features["input_mask"], tf.cast(short > 0, tf.int32)], 0),
        "segment_ids": tf.concat([features["segment_ids"], tf.zeros_like(short)], 0),
        "example_index": tf.range(302, dtype=tf.int64)}
    out = run_masking(features)
    ids, mask = features["input_ids"].numpy(), features["input_mask"].numpy()
    candidates = (mask == 1) & ~np.isin(ids, [CLS, SEP, MASK])
    wanted = np.minimum(expected_count(mask, MASK_PROB, N), candidates.sum(-1))
    assert (wanted < expected_count(mask, MASK_PROB, N)).any()  # the fixture has short rows
    assert (wanted == N).any() and (wanted == 1).any()
    for row in range(len(ids)):
        used = out["masked_lm_weights"][row] == 1
        positions = out["masked_lm_positions"][row][used]
        assert used.sum() == wanted[row]
        assert used[:used.sum()].all()  # used slots come first
        assert len(set(positions)) == len(positions)  # without replacement
        assert candidates[row, positions].all()  # never [CLS], [SEP], [MASK] or padding
        np.testing.assert_array_equal(out["masked_lm_ids"][row][used], ids[row, positions])
        assert (out["masked_lm_positions"][row][~used] == 0).all()
        assert (out["masked_lm_ids"][row][~used] == 0).all()
        np.testing.assert_array_equal(np.flatnonzero(out["is_masked"][row]), np.sort(positions))
        # Only chosen positions change, and only to [MASK].
        changed = out["masked_input_ids"][row] != ids[row]
        assert not (changed & ~out["is_masked"][row]).any()
        assert (out["masked_input_ids"][row][changed] == MASK).all()


def test_num_to_predict_formula():
    lengths = np.arange(0, 129)
    mask = (np.arange(128)[None, :] < lengths[:, None]).astype(np.int32)
    for mask_prob, max_predictions in ((0.15, 19), (0.25, 32)):
        got = masking.num_to_predict(tf.constant(mask), mask_prob, max_predictions).numpy()
        np.testing.assert_array_equal(got, expected_count(mask, mask_prob, max_predictions))


def test_eighty_five_percent_become_mask_and_positions_are_uniform():
    features = random_batch(2000, 40, 50, seed=1, min_length=40)
    ids = features["input_ids"].numpy()
    candidates = ~np.isin(ids, [CLS, SEP, MASK])
    out = run_masking(features, max_predictions=N)
    chosen = out["is_masked"]
    total = chosen.sum()
    mask_fraction = (out["masked_input_ids"][chosen] == MASK).mean()
    sigma = np.sqrt(0.85 * 0.15 / total)
    assert abs(mask_fraction - 0.85) < 4 * sigma, mask_fraction
    # Every candidate position is equally likely to be chosen: the chosen fraction of candidates
    # per position stays within 5 sigma of the overall rate.
    rate = chosen.sum() / candidates.sum()
    per_position = chosen.sum(0) / np.maximum(candidates.sum(0), 1)
    counts = candidates.sum(0)
    valid = counts > 500
    sigmas = np.sqrt(rate * (1 - rate) / counts[valid])
    assert (np.abs(per_position[valid] - rate) < 5 * sigmas).all()


def test_partition_invariance_and_seed_dependence():
    features = random_batch(8, 32, 50, seed=2, first_index=1000)
    whole = run_masking(features)
    order = [5, 2, 7, 0, 3, 6, 1, 4]
    halves = [run_masking(take_rows(features, order[:3])),
              run_masking(take_rows(features, order[3:]))]
    for key in whole:
        parts = np.concatenate([halves[0][key], halves[1][key]])
        np.testing.assert_array_equal(parts, whole[key][order], err_msg=key)
    other_seed = run_masking(features, seed=2)
    assert (other_seed["masked_lm_positions"] != whole["masked_lm_positions"]).any()
    shifted = run_masking(dict(features, example_index=features["example_index"] + 8))
    assert (shifted["masked_lm_positions"] != whole["masked_lm_positions"]).any()


def test_large_seeds_and_example_indices():
    features = random_batch(4, 32, 50, seed=3, first_index=2 ** 40)
    first = run_masking(features, seed=2 ** 63 - 1)
    again = run_masking(features, seed=2 ** 63 - 1)
    np.testing.assert_array_equal(first["masked_lm_positions"], again["masked_lm_positions"])
    high = run_masking(dict(features, example_index=features["example_index"] + 2 ** 33),
                       seed=2 ** 63 - 1)
    assert (high["masked_lm_positions"] != first["masked_lm_positions"]).any()
