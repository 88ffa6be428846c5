"""The BERT embeddings block of the ELECTRA recipe: word + position + token-type embeddings,
LayerNorm (epsilon 1e-12) and dropout.

ELECTRA shares this whole block between the generator and the discriminator, so one `Embeddings`
object is passed to both towers. Its variables end with the TF1 names
`electra/embeddings/{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm/*}`.
"""

import keras
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.modeling import common


class Embeddings(keras.layers.Layer):
    """Token embeddings [B, T] -> [B, T, embedding_size]."""

    def __init__(self, config: ModelConfig, name: str = "embeddings", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.layer_norm = common.layer_norm(config)

    def build(self, input_shape=None):
        config = self.config
        init = common.initializer(config)
        # The tables stay float32 under mixed precision (autocast=False): rows are gathered first
        # and only the gathered rows are cast, instead of casting the whole table every step.
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(config.vocab_size, config.embedding_size),
            initializer=init, autocast=False)
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(config.max_position_embeddings, config.embedding_size),
            initializer=init, autocast=False)
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(config.type_vocab_size, config.embedding_size),
            initializer=init, autocast=False)
        self.layer_norm.build((None, None, config.embedding_size))

    def call(self, input_ids, segment_ids, training=False, dropout_seed=None):
        seq_length = ops.shape(input_ids)[1]
        positions = ops.slice(self.position_embeddings, (0, 0),
                              (seq_length, self.config.embedding_size))
        embedded = (ops.take(self.word_embeddings, input_ids, axis=0)
                    + ops.take(self.token_type_embeddings, segment_ids, axis=0)
                    + positions[None])
        embedded = self.layer_norm(embedded)
        return common.dropout(embedded, self.config.hidden_dropout_prob, training,
                              dropout_seed, common.EMBEDDINGS_SITE)
