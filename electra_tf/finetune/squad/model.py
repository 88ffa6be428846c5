"""The reference's QA model for SQuAD (docs/RECIPE.md "Fine-tuning", QA): the discriminator plus
the joint start/end head and, for 2.0, the answerability classifier.

- answer mask: context tokens (segment 1 and real) plus position 0 ([CLS]); start and end logits
  get +1000 * (mask - 1), in training and at inference, so a question token is never an answer;
- start logits: dense(1) per token;
- end logits: concat(vector of the start token, vector of each token) -> dense(512, GELU)
  "qa_hidden" -> dense(1); training uses the gold start, inference the top `BEAM` starts by
  log-softmax, each with its top `BEAM` ends by log-softmax (a span scores the sum);
- answerability (2.0): concat([CLS] vector, softmax(start logits)-weighted sum of the token
  vectors) -> dense(512, GELU) -> dense(1), the logit that the question is impossible; sigmoid
  cross-entropy weighted 0.5;
- loss per window: (start CE + end CE) / 2 + 0.5 * answerability loss.

Dense layers use TF1 `tf.layers.dense`'s initializer (glorot-uniform kernel, zero bias), as the
reference. dense(concat(s, e)) is computed as s W_s + e W_e + b with the kernel split in two
(the same numbers without materializing [beam, T, 2H] inputs).
"""

import keras
import tensorflow as tf
from keras import ops

from electra_tf.config import ModelConfig
from electra_tf.data import INPUT_KEYS
from electra_tf.modeling import common
from electra_tf.modeling.backbone import Backbone

# The reference's beam: starts kept per window, ends kept per start.
BEAM = 20
HIDDEN = 512
ANSWERABLE_WEIGHT = 0.5
MASK_LOGIT = 1000.0


def _dense(units: int, name: str, activation=None) -> keras.layers.Dense:
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.GlorotUniform(),
                              bias_initializer="zeros")


def answer_mask(features) -> tf.Tensor:
    """float32 [B, T]: 1 on real segment-1 tokens and on position 0 ([CLS]), else 0."""
    mask = tf.cast(features["input_mask"], tf.float32) * tf.cast(
        features["segment_ids"] > 0, tf.float32)
    length = tf.shape(mask)[1]
    return tf.maximum(mask, tf.one_hot(tf.zeros_like(mask[:, 0], tf.int32), length))


class QAHead(keras.layers.Layer):
    """sequence_output [B, T, H] -> start logits, end logits, impossibility logit."""

    def __init__(self, config: ModelConfig, name: str = "qa", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.start = _dense(1, "start_logits")
        self.qa_hidden = _dense(HIDDEN, "qa_hidden")
        self.end = _dense(1, "end_logits")
        self.answerable_hidden = _dense(HIDDEN, "answerable_hidden", activation=common.gelu)
        self.answerable = _dense(1, "answerable")
        self.build()

    def build(self, input_shape=None):
        hidden = self.config.hidden_size
        self.start.build((None, hidden))
        self.qa_hidden.build((None, 2 * hidden))
        self.end.build((None, HIDDEN))
        self.answerable_hidden.build((None, 2 * hidden))
        self.answerable.build((None, HIDDEN))

    def start_logits(self, sequence_output, mask):
        logits = ops.cast(ops.squeeze(self.start(sequence_output), -1), "float32")
        return logits + MASK_LOGIT * (mask - 1.0)

    def end_logits(self, start_vectors, sequence_output, mask):
        """start_vectors [B, S, H] (S starts per window) -> end logits [B, S, T]."""
        hidden = self.config.hidden_size
        kernel = ops.cast(self.qa_hidden.kernel, sequence_output.dtype)
        bias = ops.cast(self.qa_hidden.bias, sequence_output.dtype)
        from_start = ops.matmul(start_vectors, kernel[:hidden])          # [B, S, 512]
        from_end = ops.matmul(sequence_output, kernel[hidden:]) + bias    # [B, T, 512]
        joint = common.gelu(from_start[:, :, None, :] + from_end[:, None, :, :])
        logits = ops.cast(ops.squeeze(self.end(joint), -1), "float32")
        return logits + MASK_LOGIT * (mask[:, None, :] - 1.0)

    def impossible_logit(self, sequence_output, start_logits):
        weights = ops.cast(ops.softmax(start_logits, axis=-1), sequence_output.dtype)
        weighted = ops.sum(weights[:, :, None] * sequence_output, axis=1)
        features = ops.concatenate([sequence_output[:, 0], weighted], axis=-1)
        return ops.cast(ops.squeeze(self.answerable(self.answerable_hidden(features)), -1),
                        "float32")


def _gather_vectors(sequence_output, positions):
    """sequence_output [B, T, H], positions int [B, S] -> [B, S, H]."""
    return tf.gather(sequence_output, tf.cast(positions, tf.int32), axis=1, batch_dims=1)


class SpanModel(keras.Model):
    """Discriminator + QAHead, following the training-loop contract of finetune/model.py.

    With `start_positions` in the features: the loss and metrics (gold start). Not training:
    the beam outputs `start_top_log_probs` / `start_top_index` [B, K], `end_top_log_probs` /
    `end_top_index` [B, K, K] (K = min(BEAM, T)) and `impossible_logits` [B] (2.0; zeros for
    1.1).
    """

    def __init__(self, config: ModelConfig, version: int = 2, name: str = "span_model",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.version = version
        self.backbone = Backbone(config, name="electra")
        self.head = QAHead(config)

    def call(self, features, training=False, dropout_seed=None):
        inputs = {key: features[key] for key in INPUT_KEYS}
        sequence_output = self.backbone(inputs, training=training, dropout_seed=dropout_seed)
        mask = answer_mask(features)
        start_logits = self.head.start_logits(sequence_output, mask)
        outputs = {}
        if self.version == 2:
            impossible = self.head.impossible_logit(sequence_output, start_logits)
        else:
            impossible = tf.zeros_like(start_logits[:, 0])
        if not training:
            beam = tf.minimum(BEAM, tf.shape(start_logits)[1])
            start_log_probs = tf.nn.log_softmax(start_logits, axis=-1)
            start_top = tf.math.top_k(start_log_probs, k=beam)
            end_logits = self.head.end_logits(
                _gather_vectors(sequence_output, start_top.indices), sequence_output, mask)
            end_top = tf.math.top_k(tf.nn.log_softmax(end_logits, axis=-1), k=beam)
            outputs.update(start_top_log_probs=start_top.values,
                           start_top_index=start_top.indices,
                           end_top_log_probs=end_top.values, end_top_index=end_top.indices,
                           impossible_logits=impossible)
        if "start_positions" not in features:
            return outputs
        weight = (tf.cast(features["example_weight"], tf.float32)
                  if "example_weight" in features else tf.ones_like(start_logits[:, 0]))
        span_weight = tf.cast(features["span_weight"], tf.float32) * weight
        starts = tf.cast(features["start_positions"], tf.int32)
        end_logits = self.head.end_logits(
            _gather_vectors(sequence_output, starts[:, None]), sequence_output, mask)[:, 0]
        start_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(starts, start_logits)
        end_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.cast(features["end_positions"], tf.int32), end_logits)
        per_window = span_weight * (start_ce + end_ce) / 2.0
        metrics = {}
        if self.version == 2:
            impossible_label = tf.cast(features["is_impossible"], tf.float32)
            bce = tf.nn.sigmoid_cross_entropy_with_logits(impossible_label, impossible)
            per_window += span_weight * ANSWERABLE_WEIGHT * bce
            correct = tf.cast(tf.equal(impossible > 0, impossible_label > 0.5), tf.float32)
            metrics["answerable_accuracy"] = (tf.reduce_sum(correct * span_weight),
                                              tf.reduce_sum(span_weight))
        start_ok = tf.cast(tf.equal(tf.argmax(start_logits, axis=-1, output_type=tf.int32),
                                    starts), tf.float32)
        loss_sum, count = tf.reduce_sum(per_window), tf.reduce_sum(span_weight)
        outputs["losses"] = {"loss": (loss_sum, count, 1.0)}
        outputs["metrics"] = {"loss": (loss_sum, count),
                              "start_accuracy": (tf.reduce_sum(start_ok * span_weight),
                                                 tf.reduce_sum(span_weight)),
                              **metrics}
        return outputs
