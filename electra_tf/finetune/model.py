"""Fine-tuning models of the ELECTRA recipe: the pre-trained discriminator plus a task head.

Sentence tasks: dropout 0.1 + dense on the [CLS] vector (softmax cross-entropy for
classification, squared error on one output for regression). Tagging: dropout + dense per token,
cross-entropy on the first WordPiece of each word. The discriminator is a `Backbone` named
"electra", so its variables keep the TF1 names (layer-wise lr decay reads the depth from them and
--init_checkpoint restores them); heads sit at the top depth L + 2.

The models follow the training-loop contract (electra_tf/training/loop.py): `model(features, training,
dropout_seed)` returns {"losses": {name: (sum, count, weight)}, "metrics": {name: (sum,
count)}, ...per-example outputs}. Every example carries `example_weight` (1 for real examples, 0
for the rows that pad the last evaluation batch). Without labels in `features` (serving), only the
per-example outputs are returned.
"""

import json
import os

import keras
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from electra_tf.cli import UserError
from electra_tf.config import ElectraConfig
from electra_tf.interop import tf1_checkpoint
from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import ClassificationHead, TaggingHead
from electra_tf.training import checkpoints

INPUT_KEYS = ("input_ids", "input_mask", "segment_ids")
# The task description written into every fine-tuning model_dir (read by export and by
# predict-only runs).
TASK_FILE = "finetune_task.json"


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

    def __init__(self, config: ElectraConfig, num_labels: int, regression: bool = False,
                 name: str = "sequence_model", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.regression = regression
        self.backbone = Backbone(config, name="electra")
        self.head = ClassificationHead(config, 1 if regression else num_labels)

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

    def __init__(self, config: ElectraConfig, num_labels: int, name: str = "tagging_model",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.backbone = Backbone(config, name="electra")
        self.head = TaggingHead(config, num_labels)

    def call(self, features, training=False, dropout_seed=None):
        inputs = {key: features[key] for key in INPUT_KEYS}
        sequence_output = self.backbone(inputs, training=training, dropout_seed=dropout_seed)
        logits = self.head(sequence_output, training=training, dropout_seed=dropout_seed)
        weight = None
        if "label_ids" in features:
            weight = (tf.cast(features["label_mask"], tf.float32)
                      * _weights(features, logits)[:, None])
        return _classification_outputs(logits, features, weight)


# How a model is rebuilt from the task metadata saved in the model directory (finetune_task.json),
# by task kind; a task of a new kind adds its builder here.
MODEL_BUILDERS = {
    "classification": lambda metadata, config: SequenceModel(config, len(metadata["labels"])),
    "regression": lambda metadata, config: SequenceModel(config, 1, regression=True),
    "tagging": lambda metadata, config: TaggingModel(config, len(metadata["labels"])),
    "span": lambda metadata, config: _span_model(metadata, config),
}


def _span_model(metadata: dict, config: ElectraConfig) -> keras.Model:
    from electra_tf.finetune import squad_task  # lazy: only QA runs need the QA task
    return squad_task.build_span_model(metadata, config)


def build_model(metadata: dict, config: ElectraConfig) -> keras.Model:
    """The task model described by `metadata` ({"kind", "labels", ...}), freshly initialized."""
    kind = metadata.get("kind")
    if kind not in MODEL_BUILDERS:
        raise UserError(f"no fine-tuning model for task kind {kind!r}; known kinds: "
                        f"{', '.join(sorted(MODEL_BUILDERS))}")
    return MODEL_BUILDERS[kind](metadata, config)


def load_task_metadata(model_dir: str):
    """The task description saved in a fine-tuning model_dir, or None if there is none."""
    path = os.path.join(model_dir, TASK_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def load_finetuned(model_dir: str) -> tuple:
    """(model, task metadata, ElectraConfig) of a fine-tuned model_dir, latest weights restored.

    Build it under the strategy scope and dtype policy it will run with. The metadata has
    "task", "kind", "labels", "vocab_file" (relative to model_dir), "do_lower_case",
    "strip_accents", "max_seq_length" and "text_pairs".
    """
    metadata = load_task_metadata(model_dir)
    config_path = os.path.join(model_dir, checkpoints.CONFIG_FILE)
    if metadata is None or not tf.io.gfile.exists(config_path):
        raise UserError(f"{model_dir}: not a fine-tuned model directory (no {TASK_FILE} or "
                        f"{checkpoints.CONFIG_FILE})")
    prefix = tf.train.latest_checkpoint(model_dir)
    if not prefix:
        raise UserError(f"{model_dir}: holds no fine-tuned checkpoint")
    config = ElectraConfig.load(config_path)
    model = build_model(metadata, config)
    try:
        tf.train.Checkpoint(model=model).restore(prefix).expect_partial() \
            .assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise UserError(f"{prefix}: does not fit the {metadata.get('kind')} model described "
                        f"in {TASK_FILE}: {str(e).splitlines()[0]}") from None
    return model, metadata, config


def _model_children(prefix: str) -> set:
    """Names of the attributes of the "model" object saved in an object-based checkpoint."""
    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    for child in graph.nodes[0].children:
        if child.local_name == "model":
            return {c.local_name for c in graph.nodes[child.node_id].children}
    return set()


def restore_pretrained(model: keras.Model, path: str) -> str:
    """Loads the discriminator of --init_checkpoint into `model.backbone`; returns the prefix.

    `path` is a model_dir or checkpoint prefix of pre-training (the discriminator is the
    pre-training model's `discriminator`), of fine-tuning (its `backbone`), or a released TF1
    checkpoint (its `electra/*` variables); the task head keeps its fresh initialization. A
    checkpoint of another architecture or vocabulary is a UserError.
    """
    prefix = checkpoints.resolve_checkpoint(path)
    if tf1_checkpoint.is_tf1_checkpoint(prefix):
        return checkpoints.restore_model_weights(model.backbone, prefix)
    children = _model_children(prefix)
    attribute = next((name for name in ("discriminator", "backbone") if name in children), None)
    if attribute is None:
        raise UserError(f"--init_checkpoint={path}: holds no ELECTRA discriminator (a model "
                        f"with {', '.join(sorted(children)) or 'no'} parts)")
    return checkpoints.restore_model_weights(
        tf.train.Checkpoint(**{attribute: model.backbone}), prefix)


def init_checkpoint_config(path: str):
    """The sizes of the model in --init_checkpoint: its config.json, or for a released TF1
    checkpoint the sizes its variable shapes imply; None when neither is available."""
    directory = path if tf.io.gfile.isdir(path) else os.path.dirname(path)
    config_path = os.path.join(directory, checkpoints.CONFIG_FILE)
    if tf.io.gfile.exists(config_path):
        try:
            return ElectraConfig.load(config_path)
        except ValueError as e:
            raise UserError(f"{config_path}: {e}") from None
    prefix = checkpoints.resolve_checkpoint(path)
    if tf1_checkpoint.is_tf1_checkpoint(prefix):
        return tf1_checkpoint.infer_config(tf1_checkpoint.checkpoint_shapes(prefix))
    return None
