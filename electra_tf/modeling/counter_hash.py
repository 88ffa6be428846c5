"""Counter-based random numbers for ELECTRA's randomness: dropout masks, masking and Gumbel-max
sampling.

The recipe's randomness must be reproducible and identical however a global batch is split
across replicas, so every random number is a pure function of (key, counter): a key is hashed
from (seed, stream[, example_index]) and each element hashes its counter (a flat index, a
position, or slot * vocab_size + token id) together with that key. Only 32-bit integer
multiplies, shifts and xors are used (keras.ops, so the same code runs on the TensorFlow and JAX
backends): they vectorize on CPU, fuse under XLA and give identical bits everywhere.

The mixer is the "lowbias32" integer finalizer (Wellons' hash-prospector): a bijection on
uint32 with near-ideal avalanche. The element hash is mix(key xor mix(counter)), so rows with
different keys give unrelated sequences rather than shifted copies of one sequence.
"""

from keras import ops

_MUL_1 = 0x7FEB352D
_MUL_2 = 0x846CA68B
_GOLDEN = 0x9E3779B9
_MASK_32 = 0xFFFFFFFF

# Streams: one per use, so masking and sampling never reuse numbers.
STREAM_MASK_POSITIONS = 1
STREAM_MASK_REPLACE = 2
STREAM_GUMBEL = 3


def u32(value: int):
    """A uint32 scalar constant (explicit, so keras.ops never promotes to int64)."""
    return ops.convert_to_tensor(value & _MASK_32, dtype="uint32")


def mix32(x):
    """lowbias32: uint32 -> uint32 bijection (multiplication wraps modulo 2**32)."""
    x = ops.bitwise_xor(x, ops.right_shift(x, u32(16)))
    x = ops.multiply(x, u32(_MUL_1))
    x = ops.bitwise_xor(x, ops.right_shift(x, u32(15)))
    x = ops.multiply(x, u32(_MUL_2))
    return ops.bitwise_xor(x, ops.right_shift(x, u32(16)))


def mix_python(x: int) -> int:
    """mix32 on a Python int, for keys known when the graph is built."""
    x &= _MASK_32
    x ^= x >> 16
    x = (x * _MUL_1) & _MASK_32
    x ^= x >> 15
    x = (x * _MUL_2) & _MASK_32
    return x ^ (x >> 16)


def seed_key(seed: int, stream: int) -> int:
    """A 32-bit key from a Python int seed of any size and a stream id."""
    key = mix_python(stream * _GOLDEN)
    seed = int(seed)
    while True:
        key = mix_python(key ^ (seed & _MASK_32))
        seed >>= 32
        if seed <= 0:
            return key


def tensor_key(seed, site: int):
    """uint32 scalar key from an int32 [2] seed tensor and a fixed integer (a dropout site)."""
    seed = ops.cast(seed, "uint32")
    key = mix32(ops.bitwise_xor(seed[0], u32(mix_python(site * _GOLDEN))))
    return mix32(ops.bitwise_xor(key, mix32(seed[1] + u32(_GOLDEN))))


def fold_in(seed, data: int):
    """A new int32 [2] seed tensor derived from an int32 [2] seed tensor and an integer."""
    first = tensor_key(seed, data)
    second = mix32(first + u32(_GOLDEN))
    return ops.cast(ops.stack([first, second]), "int32")


def row_keys(seed: int, stream: int, example_index):
    """uint32 [B] keys from a Python int seed, a stream id and int64 example indices [B]."""
    index = ops.cast(example_index, "int64")
    low = ops.cast(ops.bitwise_and(index, ops.convert_to_tensor(_MASK_32, "int64")), "uint32")
    high = ops.cast(ops.right_shift(index, ops.convert_to_tensor(32, "int64")), "uint32")
    key = mix32(ops.bitwise_xor(low, u32(seed_key(seed, stream))))
    return mix32(ops.bitwise_xor(key, mix32(high + u32(_GOLDEN))))


def hash_counters(keys, counters):
    """uint32 hash of each (key, counter): keys of shape [B] (or a scalar) with counters of shape
    [C...] give [B, C...] (or [C...]); counters are non-negative integers."""
    mixed = mix32(ops.cast(counters, "uint32"))
    if len(keys.shape):
        for _ in counters.shape:
            keys = ops.expand_dims(keys, -1)
    return mix32(ops.bitwise_xor(keys, mixed))


def to_uniform(bits):
    """uint32 -> float32 uniform strictly inside (0, 1): (k + 0.5) * 2^-23 for k the top 23 bits.

    Every one of these 2^23 values is exact in float32, from 2^-24 to 1 - 2^-24 (so the Gumbel
    noise -log(-log(u)) stays finite). Midpoints of 24 bits would not be: above 0.5, float32 has
    only a 2^-24 step, so (2^24 - 1 + 0.5) * 2^-24 rounds to 1.0.
    """
    top = ops.cast(ops.right_shift(bits, u32(9)), "float32")
    return (top + 0.5) * (1.0 / (1 << 23))


def iota(shape):
    """int32 flat indices 0..size-1 laid out in `shape` (static or dynamic dimensions)."""
    size = 1
    for dim in shape:
        size = size * dim
    return ops.reshape(ops.arange(size, dtype="int32"), shape)
