"""The keyed counter hash behind masking and Gumbel-max sampling, re-implemented in NumPy from its
documented rule (electra_tf/modeling/counter_hash.py's docstrings: a key is hashed from (seed,
stream, example_index), each element hashes its counter with that key, the mixer is Wellons'
"lowbias32"), and the recipe's masking and sampling steps (docs/RECIPE.md "Pre-training step")
written on top of it. No project code is imported: the objective test derives the masked
positions, the samples and the labels here and compares them with the model's."""

import numpy as np

M32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9  # 2^32 / golden ratio, the usual odd constant for counters
STREAM_MASK_POSITIONS, STREAM_MASK_REPLACE, STREAM_GUMBEL = 1, 2, 3


def mix(x):
    """lowbias32 (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16)
    on uint64 arrays holding 32-bit values."""
    x = np.asarray(x, np.uint64) & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def seed_key(seed: int, stream: int) -> int:
    """The stream's key, then each 32-bit word of the seed (lowest first) mixed in."""
    key = int(mix(stream * GOLDEN))
    seed = int(seed)
    while True:
        key = int(mix(key ^ (seed & M32)))
        seed >>= 32
        if seed <= 0:
            return key


def row_keys(seed: int, stream: int, example_index) -> np.ndarray:
    """One key per example: its index's low word with the seed key, then its high word."""
    index = np.asarray(example_index, np.uint64)
    key = mix((index & M32) ^ seed_key(seed, stream))
    return mix(key ^ mix(((index >> 32) + GOLDEN) & M32))


def hash_counters(keys, counters) -> np.ndarray:
    """[B] keys x counters [C...] -> [B, C...]: mix(key ^ mix(counter))."""
    keys = np.asarray(keys, np.uint64).reshape((-1,) + (1,) * np.ndim(counters))
    return mix(keys ^ mix(counters))


def uniform(bits) -> np.ndarray:
    """(k + 0.5) * 2^-23 for k the top 23 bits: strictly inside (0, 1)."""
    return ((np.asarray(bits, np.uint64) >> 9).astype(np.float64) + 0.5) * 2.0 ** -23


def mask(input_ids, input_mask, example_index, *, seed, mask_prob, max_predictions, mask_id,
         special_ids, mask_fraction=0.85):
    """The recipe's masking: n = max(1, min(N, round(#real * mask_prob))) distinct candidates
    with the highest random scores (the hash's high bits above the position, so no ties), 85%
    of them [MASK]. Returns (masked ids, positions [B, N], weights [B, N])."""
    batch, length = input_ids.shape
    candidate = (input_mask == 1) & ~np.isin(input_ids, special_ids)
    position = np.arange(length)
    bits = hash_counters(row_keys(seed, STREAM_MASK_POSITIONS, example_index), position)
    position_bits = max(1, (length - 1).bit_length())
    scores = ((bits >> (1 + position_bits)).astype(np.int64) << position_bits) + position
    scores = np.where(candidate, scores, -1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :max_predictions]
    wanted = np.round(input_mask.sum(1).astype(np.float32) * np.float32(mask_prob))
    wanted = np.maximum(1, np.minimum(max_predictions, wanted.astype(np.int64)))
    used = ((np.arange(max_predictions)[None] < wanted[:, None])
            & (np.take_along_axis(scores, order, 1) >= 0))
    positions = np.where(used, order, 0)
    chosen = np.zeros((batch, length), bool)
    for row in range(batch):
        chosen[row, positions[row][used[row]]] = True
    replace_bits = hash_counters(row_keys(seed, STREAM_MASK_REPLACE, example_index), position)
    replace = uniform(replace_bits) < np.float32(mask_fraction)
    masked = np.where(chosen & replace, mask_id, input_ids)
    return masked, positions, used.astype(np.float64)


def gumbel(example_index, num_slots: int, vocab_size: int, seed: int) -> np.ndarray:
    """Standard Gumbel noise [B, N, V]; the counter of (slot, token) is slot * V + token."""
    counters = np.arange(num_slots * vocab_size).reshape(num_slots, vocab_size)
    u = uniform(hash_counters(row_keys(seed, STREAM_GUMBEL, example_index), counters))
    return -np.log(-np.log(u))
