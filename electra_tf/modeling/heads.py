"""Output heads of the ELECTRA recipe.

Pre-training: the generator's masked-LM head (dense(E, gelu) -> LayerNorm -> tied
word_embeddings^T + output_bias, evaluated only at the masked positions) and the discriminator's
replaced-token head (dense(H, gelu) -> dense_1(1)). Their variables end with the TF1 names
`generator_predictions/{dense/*, LayerNorm/*, output_bias}` and
`discriminator_predictions/{dense/*, dense_1/*}`. As in the reference, `dense_1` keeps TF1's
default glorot-uniform kernel initializer; every other kernel uses truncated normal 0.02.

Fine-tuning: the reference's task head (dropout 0.1 + a glorot-initialized dense layer) on the
[CLS] vector (classification, regression) or on every token (tagging); the QA head lives with
the QA task (finetune/squad/model.py). All heads return float32 logits so losses run in float32
under mixed precision.
"""

import keras
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.modeling import common


class GeneratorHead(keras.layers.Layer):
    """Generator hidden states at masked positions [B, N, Hg] -> vocabulary logits [B, N, V]."""

    def __init__(self, config: ModelConfig, input_size: int,
                 name: str = "generator_predictions", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.input_size = input_size
        self.dense = common.dense(config.embedding_size, config, "dense", activation=common.gelu)
        self.layer_norm = common.layer_norm(config)
        self.build()

    def build(self, input_shape=None):
        self.dense.build((None, None, self.input_size))
        self.layer_norm.build((None, None, self.config.embedding_size))
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.config.vocab_size,), initializer="zeros")

    def call(self, hidden, word_embeddings):
        """`word_embeddings` is the shared [V, E] table (the tied output embedding)."""
        hidden = self.layer_norm(self.dense(hidden))
        table = ops.cast(word_embeddings, self.compute_dtype)
        # One 2-D product over all B * N slots: as a [B, N, E] x [V, E] broadcast product, the
        # table's gradient would be a [B, E, V] batch (500 MB for ELECTRA-Small at batch 32)
        # summed over B.
        flat = ops.reshape(hidden, (-1, self.config.embedding_size))
        logits = ops.matmul(flat, ops.transpose(table))
        logits = ops.reshape(logits, (*ops.shape(hidden)[:-1], self.config.vocab_size))
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")


class DiscriminatorHead(keras.layers.Layer):
    """Discriminator sequence output [B, T, H] -> replaced-token logits [B, T]."""

    def __init__(self, config: ModelConfig, name: str = "discriminator_predictions", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.dense = common.dense(config.hidden_size, config, "dense", activation=common.gelu)
        self.dense_1 = common.dense(1, config, "dense_1",
                                    kernel_initializer=keras.initializers.GlorotUniform())
        self.build()

    def build(self, input_shape=None):
        shape = (None, None, self.config.hidden_size)
        self.dense.build(shape)
        self.dense_1.build(shape)

    def call(self, sequence_output):
        logits = self.dense_1(self.dense(sequence_output))
        return ops.cast(ops.squeeze(logits, -1), "float32")


class DenseHead(keras.layers.Layer):
    """A fine-tuning task head: dropout 0.1 (stateless, head site) + dense(units) with TF1
    `tf.layers.dense`'s default initializer (glorot-uniform kernel, zero bias), as the
    reference's task heads; float32 logits. `per_token`: on every token (tagging), else on the
    [CLS] vector (classification, regression).

        >>> head = DenseHead(config, 3, name="classifier")
        >>> head(sequence_output).shape  # [B, 3]
    """

    def __init__(self, config: ModelConfig, units: int, name: str, per_token: bool = False,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.per_token = per_token
        self.dense = keras.layers.Dense(
            units, name="dense", kernel_initializer=keras.initializers.GlorotUniform(),
            bias_initializer="zeros")
        self.build()

    def build(self, input_shape=None):
        self.dense.build((None, self.config.hidden_size))

    def call(self, sequence_output, training=False, dropout_seed=None):
        features = sequence_output if self.per_token else sequence_output[:, 0]
        features = common.dropout(features, self.config.hidden_dropout_prob, training,
                                  dropout_seed, common.HEAD_SITE)
        return ops.cast(self.dense(features), "float32")
