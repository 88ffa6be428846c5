"""Building blocks shared by the ELECTRA encoder and heads: the recipe's initializer, exact GELU,
LayerNorm with the recipe's epsilon, and stateless dropout.

Dropout is stateless so that a training step is a pure function of (weights, batch, dropout_seed):
the loop derives `dropout_seed` from (seed, step, replica id), which makes runs reproducible and
lets a resumed run continue the same random stream. Every dropout site hashes a fixed integer id
into that seed, so two sites never share a mask. The mask is the counter hash in keras.ops (the
same bits on every backend, and Keras' own random ops take no tensor seed) rather than
TensorFlow's stateless Philox kernel, because the hash fuses into one pass under XLA (README
"Measured" has the figures).

Every builder takes the architecture, an `electra_tf.config.ModelConfig`.
"""

import keras
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.modeling import counter_hash

# Site ids of the dropout layers. A tower's encoder layer i uses LAYER_SITE_BASE + 3 i + {0, 1, 2};
# heads use ids far above any encoder depth.
EMBEDDINGS_SITE = 0
LAYER_SITE_BASE = 1
HEAD_SITE = 1_000_000


def initializer(config: ModelConfig) -> keras.initializers.Initializer:
    """The recipe's truncated normal (std initializer_range, cut at 2 std like TF1's)."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def gelu(x):
    """GELU with the exact erf form, as in BERT (not the tanh approximation)."""
    return keras.activations.gelu(x, approximate=False)


def dense(units: int, config: ModelConfig, name: str, activation=None, kernel_initializer=None):
    """A Dense layer whose variables are named `<name>/kernel` and `<name>/bias`."""
    return keras.layers.Dense(
        units, activation=activation, name=name,
        kernel_initializer=kernel_initializer or initializer(config))


def layer_norm(config: ModelConfig, name: str = "LayerNorm") -> keras.layers.LayerNormalization:
    """LayerNorm over the last axis; Keras computes its statistics in float32 under mixed
    precision, and the epsilon is the recipe's 1e-12 (Keras' default 1e-3 would be wrong)."""
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)


def fold_seed(seed, data: int):
    """A new int32 [2] seed tensor derived from `seed` and a fixed integer."""
    return counter_hash.fold_in(seed, data)


def dropout(x, rate: float, training: bool, seed, site: int):
    """Inverted dropout whose mask is a function of (seed, site, element index) only.

    Raises ValueError when training with a positive rate but no seed: silently skipping dropout
    would change the recipe.
    """
    if not training or rate <= 0.0:
        return x
    if seed is None:
        raise ValueError("training=True with dropout needs a dropout_seed (int32 [2] tensor)")
    keep = keep_mask(ops.shape(x), rate, fold_seed(seed, site))
    return ops.where(keep, x * ops.cast(1.0 / (1.0 - rate), x.dtype), ops.zeros((), x.dtype))


def keep_mask(shape, rate: float, seed):
    """Boolean mask, True with probability 1 - rate, a pure function of the int32 [2] seed."""
    bits = counter_hash.hash_counters(counter_hash.tensor_key(seed, 0), counter_hash.iota(shape))
    return ops.greater_equal(bits, counter_hash.u32(int(rate * 2 ** 32)))
