"""One ELECTRA tower (the discriminator "electra" or the generator "generator"): embeddings,
`embeddings_project` (E -> H, glorot init, only when E != H) and the BERT encoder; no pooler.

All variables are created in the constructor, inside the tower's name scope, so their paths end
with the TF1 checkpoint names (`electra/embeddings/...`, `electra/embeddings_project/...`,
`electra/encoder/layer_{i}/...`) whatever model later wraps the tower. When an `Embeddings`
object that is already built is passed in (the generator sharing the discriminator's block),
the tower reuses it and creates no embedding variables of its own.
"""

import keras

from electra_tf.config import ModelConfig
from electra_tf.modeling import common
from electra_tf.modeling.embeddings import Embeddings
from electra_tf.modeling.encoder import TransformerEncoder


class Backbone(keras.Model):
    """features {"input_ids", "input_mask", "segment_ids"} [B, T] -> sequence_output [B, T, H].

    The [CLS] vector is `sequence_output[:, 0]`. `dropout_seed` (int32 [2]) is required when
    `training=True` and the config has dropout.
    """

    def __init__(self, config: ModelConfig, embeddings: Embeddings | None = None,
                 name: str = "electra", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.embeddings = embeddings if embeddings is not None else Embeddings(config)
        self.embeddings_project = None
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = common.dense(
                config.hidden_size, config, "embeddings_project",
                kernel_initializer=keras.initializers.GlorotUniform())
        self.encoder = TransformerEncoder(config)
        self.build()

    def build(self, input_shape=None):
        if not self.embeddings.built:
            self.embeddings.build()
        if self.embeddings_project is not None:
            self.embeddings_project.build((None, None, self.embeddings.config.embedding_size))
        self.encoder.build()

    def call(self, features, training=False, dropout_seed=None):
        hidden = self.embeddings(features["input_ids"], features["segment_ids"],
                                 training=training, dropout_seed=dropout_seed)
        if self.embeddings_project is not None:
            hidden = self.embeddings_project(hidden)
        return self.encoder(hidden, features["input_mask"], training=training,
                            dropout_seed=dropout_seed)
