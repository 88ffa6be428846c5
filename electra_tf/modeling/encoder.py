"""The BERT transformer encoder of the ELECTRA recipe (post-LayerNorm, exact GELU, dropout on
attention probabilities and on each sub-layer output, -10000 attention-mask adder).

Variables end with the TF1 names `encoder/layer_{i}/attention/self/{query,key,value}/*`,
`.../attention/output/{dense,LayerNorm}/*`, `.../intermediate/dense/*`,
`.../output/{dense,LayerNorm}/*`: the intermediate scopes are opened with `keras.name_scope`
while the sub-layers are built, which is where Keras 3 fixes a variable's path.
"""

import math

import keras
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.modeling import common

# Added to the attention logits of padding keys, exactly as the reference does.
MASK_ADDER = -10000.0


class TransformerLayer(keras.layers.Layer):
    """One encoder layer: self-attention + residual LayerNorm, FFN + residual LayerNorm."""

    def __init__(self, config: ModelConfig, index: int, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = hidden // self.num_heads
        self.query = common.dense(hidden, config, "query")
        self.key = common.dense(hidden, config, "key")
        self.value = common.dense(hidden, config, "value")
        self.attention_output = common.dense(hidden, config, "dense")
        self.attention_layer_norm = common.layer_norm(config)
        self.intermediate = common.dense(
            config.intermediate_size, config, "dense", activation=common.gelu)
        self.output_dense = common.dense(hidden, config, "dense")
        self.output_layer_norm = common.layer_norm(config)
        site = common.LAYER_SITE_BASE + 3 * index
        self._sites = {"probs": site, "attention": site + 1, "output": site + 2}

    def build(self, input_shape=None):
        hidden = self.config.hidden_size
        shape = (None, None, hidden)
        with keras.name_scope("attention"):
            with keras.name_scope("self"):
                for layer in (self.query, self.key, self.value):
                    layer.build(shape)
            with keras.name_scope("output"):
                self.attention_output.build(shape)
                self.attention_layer_norm.build(shape)
        with keras.name_scope("intermediate"):
            self.intermediate.build(shape)
        with keras.name_scope("output"):
            self.output_dense.build((None, None, self.config.intermediate_size))
            self.output_layer_norm.build(shape)

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.num_heads, self.head_size))

    def call(self, hidden, input_mask, training=False, dropout_seed=None):
        config = self.config
        # [B, 1, 1, T]: padding keys get -10000 for every head and every query position.
        adder = (1.0 - ops.cast(input_mask[:, None, None, :], "float32")) * MASK_ADDER
        query = self._split_heads(self.query(hidden))
        key = self._split_heads(self.key(hidden))
        value = self._split_heads(self.value(hidden))
        scores = ops.einsum("bfnd,btnd->bnft", query, key)
        # Softmax in float32: bfloat16/float16 logits lose too much precision for it.
        scores = ops.cast(scores, "float32") * (1.0 / math.sqrt(self.head_size))
        probs = ops.softmax(scores + adder, axis=-1)
        probs = ops.cast(probs, self.compute_dtype)
        probs = common.dropout(probs, config.attention_probs_dropout_prob, training,
                               dropout_seed, self._sites["probs"])
        context = ops.einsum("bnft,btnd->bfnd", probs, value)
        context = ops.reshape(context, ops.shape(hidden))
        attended = common.dropout(self.attention_output(context), config.hidden_dropout_prob,
                                  training, dropout_seed, self._sites["attention"])
        attended = self.attention_layer_norm(attended + hidden)
        transformed = common.dropout(self.output_dense(self.intermediate(attended)),
                                     config.hidden_dropout_prob, training, dropout_seed,
                                     self._sites["output"])
        return self.output_layer_norm(transformed + attended)


class TransformerEncoder(keras.layers.Layer):
    """A stack of `num_hidden_layers` layers named `layer_{i}`: [B, T, H] -> [B, T, H]."""

    def __init__(self, config: ModelConfig, name: str = "encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.layers = [TransformerLayer(config, i, name=f"layer_{i}")
                       for i in range(config.num_hidden_layers)]
        for layer in self.layers:  # tf.train.Checkpoint does not see into Keras 3 lists
            setattr(self, layer.name, layer)

    def build(self, input_shape=None):
        for layer in self.layers:
            layer.build((None, None, self.config.hidden_size))

    def call(self, hidden, input_mask, training=False, dropout_seed=None):
        for layer in self.layers:
            hidden = layer(hidden, input_mask, training=training, dropout_seed=dropout_seed)
        return hidden
