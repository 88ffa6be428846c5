"""The recipe's fine-tuning models for sentence and tagging tasks, and their three task kinds.

The pre-trained discriminator plus a task head. Sentence tasks: dropout 0.1 + dense on the [CLS]
vector (softmax cross-entropy for classification, squared error on one output for regression;
STS-B's target is the score / 5, tasks.py). Tagging: dropout + dense per token, cross-entropy on
the first WordPiece of each word. The heads' dense layers are initialized like TF1's
`tf.layers.dense`, glorot-uniform kernel and zero bias, as in the reference. The
discriminator is a `Backbone` named "electra", so its variables keep the TF1 names (layer-wise lr
decay reads the depth from them and --init_checkpoint restores them); heads sit at the top
depth L + 2.

The models follow the training-loop contract (electra_tf/training/loop.py): `model(features,
training, dropout_seed)` returns {"losses": {name: (sum, count, weight)}, "metrics": {name: (sum,
count)}, ...per-example outputs}. Every example carries `example_weight` (1 for real examples, 0
for the rows that pad the last evaluation batch). Without labels in `features` (serving), only the
per-example outputs are returned.
"""

import keras
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.data import INPUT_KEYS
from electra_tf.finetune import serving
from electra_tf.finetune.kinds import TaskKind
from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import DenseHead


def _weights(features, like: tf.Tensor) -> tf.Tensor:
    if "example_weight" in features:
        return tf.cast(features["example_weight"], tf.float32)
    return tf.ones(tf.shape(like)[:1], tf.float32)


def _loss_and_metrics(per_item: tf.Tensor, weight: tf.Tensor, extra_metrics: dict) -> dict:
    loss_sum = tf.reduce_sum(per_item * weight)
    count = tf.reduce_sum(weight)
    return {"losses": {"loss": (loss_sum, count, 1.0)},
            "metrics": {"loss": (loss_sum, count), **extra_metrics}}


def _classification_outputs(logits: tf.Tensor, features: dict, weight) -> dict:
    """Softmax outputs; with labels (`weight` not None) also cross-entropy and accuracy."""
    outputs = {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
               "predictions": tf.argmax(logits, axis=-1, output_type=tf.int32)}
    if weight is not None:
        labels = tf.cast(features["label_ids"], tf.int32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        correct = tf.cast(tf.equal(outputs["predictions"], labels), tf.float32)
        outputs.update(_loss_and_metrics(
            losses, weight,
            {"accuracy": (tf.reduce_sum(correct * weight), tf.reduce_sum(weight))}))
    return outputs


class SequenceModel(keras.Model):
    """Classification (num_labels logits) or regression (one score) from the [CLS] vector."""

    def __init__(self, config: ModelConfig, num_labels: int, regression: bool = False,
                 name: str = "sequence_model", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.regression = regression
        self.backbone = Backbone(config, name="electra")
        self.head = DenseHead(config, 1 if regression else num_labels, "classifier")

    def call(self, features, training=False, dropout_seed=None):
        inputs = {key: features[key] for key in INPUT_KEYS}
        sequence_output = self.backbone(inputs, training=training, dropout_seed=dropout_seed)
        logits = self.head(sequence_output, training=training, dropout_seed=dropout_seed)
        if self.regression:
            scores = logits[:, 0]
            outputs = {"predictions": scores}
            if "label" in features:
                weight = _weights(features, scores)
                errors = tf.square(scores - tf.cast(features["label"], tf.float32))
                outputs.update(_loss_and_metrics(errors, weight, {}))
            return outputs
        weight = _weights(features, logits) if "label_ids" in features else None
        return _classification_outputs(logits, features, weight)


class TaggingModel(keras.Model):
    """Per-token tag logits; loss and accuracy over the first WordPiece of each word."""

    def __init__(self, config: ModelConfig, num_labels: int, name: str = "tagging_model",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.backbone = Backbone(config, name="electra")
        self.head = DenseHead(config, num_labels, "tagger", per_token=True)

    def call(self, features, training=False, dropout_seed=None):
        inputs = {key: features[key] for key in INPUT_KEYS}
        sequence_output = self.backbone(inputs, training=training, dropout_seed=dropout_seed)
        logits = self.head(sequence_output, training=training, dropout_seed=dropout_seed)
        weight = None
        if "label_ids" in features:
            weight = (tf.cast(features["label_mask"], tf.float32)
                      * _weights(features, logits)[:, None])
        return _classification_outputs(logits, features, weight)


def _sentence_serving(tokenizer, model, metadata: dict, max_seq_length: int, model_dir: str):
    return serving.TaskServing(tokenizer, model, max_seq_length, metadata.get("labels"),
                               label_scale=float(metadata.get("label_scale", 1.0)))


CLASSIFICATION = TaskKind(
    "classification", head="classifier",
    build_model=lambda metadata, config: SequenceModel(config, len(metadata["labels"])),
    build_serving=_sentence_serving)
REGRESSION = TaskKind(
    "regression", head="regressor",
    build_model=lambda metadata, config: SequenceModel(config, 1, regression=True),
    build_serving=_sentence_serving)
TAGGING = TaskKind(
    "tagging", head="tagger",
    build_model=lambda metadata, config: TaggingModel(config, len(metadata["labels"])),
    build_serving=lambda tokenizer, model, metadata, max_seq_length, model_dir:
        serving.TaggingServing(tokenizer, model, max_seq_length, metadata["labels"]))
KINDS = (CLASSIFICATION, REGRESSION, TAGGING)
