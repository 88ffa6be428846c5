"""Extractive question answering (SQuAD 1.1 `squadv1`, SQuAD 2.0 `squad`): the task kind "span"
and its two fine-tuning tasks.

Plugs the SQuAD reader, sliding-window features, span search and official evaluation of this
package into the fine-tuning runner (finetune/tasks.py). The model is the recipe's QA model: the
discriminator plus a span head (start/end logits per token) and, for 2.0, an answerability logit
from [CLS]. Loss per
window: the mean of the start and end cross-entropies (over real tokens; a 2.0 window without
the answer points both at [CLS]) plus, for 2.0, the answerability sigmoid cross-entropy.

Rows of the feature arrays are windows; a question spans one or more of them. Evaluation writes
the official-format predictions (`<split>_predictions.json`), the no-answer scores
(`<split>_null_odds.json`) and the n-best lists into the model directory; for 2.0 it picks the
no-answer threshold that maximizes dev F1 and saves it (`squad_null_threshold.json`) for test
predictions and the exported model.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from electra_tf import cli, io
from electra_tf.config import ModelConfig
from electra_tf.data import INPUT_KEYS
from electra_tf.finetune import tasks
from electra_tf.finetune.kinds import TaskKind, TaskName
from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import metrics as squad_metrics
from electra_tf.finetune.squad import postprocess, reader, serving
from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.encoder import MASK_ADDER
from electra_tf.modeling.heads import SpanHead

THRESHOLD_FILE = "squad_null_threshold.json"
# The recipe's QA windows hold 512 WordPieces.
QA_MAX_SEQ_LENGTH = 512


class SpanModel(keras.Model):
    """Discriminator + SpanHead, following the training-loop contract of finetune/model.py."""

    def __init__(self, config: ModelConfig, version: int = 2, name: str = "span_model", **kwargs):
        super().__init__(name=name, **kwargs)
        self.config = config
        self.version = version
        self.backbone = Backbone(config, name="electra")
        self.head = SpanHead(config)

    def call(self, features, training=False, dropout_seed=None):
        inputs = {key: features[key] for key in INPUT_KEYS}
        sequence_output = self.backbone(inputs, training=training, dropout_seed=dropout_seed)
        head = self.head(sequence_output, training=training, dropout_seed=dropout_seed)
        adder = (1.0 - tf.cast(features["input_mask"], tf.float32)) * MASK_ADDER
        start_logits = tf.cast(head["start_logits"], tf.float32) + adder
        end_logits = tf.cast(head["end_logits"], tf.float32) + adder
        outputs = {"start_logits": start_logits, "end_logits": end_logits,
                   "answerable_logits": head["answerable_logits"]}
        if "start_positions" not in features:
            return outputs
        weight = (tf.cast(features["example_weight"], tf.float32)
                  if "example_weight" in features else tf.ones_like(start_logits[:, 0]))
        span_weight = tf.cast(features["span_weight"], tf.float32) * weight
        start_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.cast(features["start_positions"], tf.int32), start_logits)
        end_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.cast(features["end_positions"], tf.int32), end_logits)
        per_window = span_weight * (start_ce + end_ce) / 2.0
        counted = span_weight
        metrics = {}
        if self.version == 2:
            answerable = tf.cast(features["answerable"], tf.float32)
            bce = tf.nn.sigmoid_cross_entropy_with_logits(answerable, head["answerable_logits"])
            per_window += span_weight * bce
            correct = tf.cast(tf.equal(head["answerable_logits"] > 0, answerable > 0.5),
                              tf.float32)
            metrics["answerable_accuracy"] = (tf.reduce_sum(correct * span_weight),
                                              tf.reduce_sum(span_weight))
        start_ok = tf.cast(tf.equal(tf.argmax(start_logits, axis=-1, output_type=tf.int32),
                                    tf.cast(features["start_positions"], tf.int32)), tf.float32)
        loss_sum, count = tf.reduce_sum(per_window), tf.reduce_sum(counted)
        outputs["losses"] = {"loss": (loss_sum, count, 1.0)}
        outputs["metrics"] = {"loss": (loss_sum, count),
                              "start_accuracy": (tf.reduce_sum(start_ok * span_weight),
                                                 tf.reduce_sum(span_weight)),
                              **metrics}
        return outputs


def load_null_threshold(model_dir: str) -> float | None:
    """The no-answer threshold chosen on dev and saved in `model_dir`, or None."""
    path = io.join(model_dir, THRESHOLD_FILE)
    if not tf.io.gfile.exists(path):
        return None
    return float(io.read_json(path)["null_threshold"])


def _serving(tokenizer, model, metadata: dict, max_seq_length: int,
             model_dir: str) -> serving.QAServing:
    return serving.QAServing(tokenizer, model, metadata, max_seq_length,
                             null_threshold=load_null_threshold(model_dir))


SPAN = TaskKind(
    "span", head="qa",
    build_model=lambda metadata, config: SpanModel(config,
                                                   version=int(metadata.get("version", 2))),
    build_serving=_serving)
KINDS = (SPAN,)


class SquadTask(tasks.Task):
    """`squad` (2.0) or `squadv1` (1.1) from official JSON files or TFDS."""

    task_kind = SPAN
    primary_metric = "f1"
    output_keys = ("start_logits", "end_logits", "answerable_logits")

    def __init__(self, name: str, version: int, options):
        # The recipe fine-tunes SQuAD for 2 epochs.
        super().__init__(name, default_epochs=2.0, eval_splits=("dev",), test_splits=("test",))
        self.version = version
        self.files = {split: getattr(options, f"{split}_file") for split in
                      ("train", "dev", "test")}
        self.tfds_data_dir = options.tfds_data_dir
        self.window = squad_features.WindowConfig(
            max_seq_length=options.max_seq_length, doc_stride=options.doc_stride,
            max_query_length=options.max_query_length)
        self.window.validate()
        self.n_best_size = options.n_best_size
        self.max_answer_length = options.max_answer_length
        # Without files, train and dev come from TFDS (its "validation" split is the dev set).
        self.use_tfds = not any(self.files.values())
        self.model_dir: str | None = None
        self.null_threshold: float | None = None

    def has_split(self, split: str) -> bool:
        if self.use_tfds:
            return split in ("train", "dev")
        return bool(self.files.get(split))

    def read(self, split: str) -> list:
        if self.use_tfds:
            examples, stats = reader.read_squad_tfds(
                "train" if split == "train" else "validation", self.version, self.tfds_data_dir)
        else:
            examples, stats = reader.read_squad_json(self.files[split], self.version)
        print(stats.report(), file=sys.stderr, flush=True)
        return examples

    def prepare(self, model_dir: str, do_train: bool) -> None:
        super().prepare(model_dir, do_train)
        self.model_dir = model_dir
        self.null_threshold = load_null_threshold(model_dir)

    def featurize(self, examples: list, tokenizer, max_seq_length: int) -> tasks.FeatureSet:
        # max_seq_length is --max_seq_length, already in self.window (from the same options).
        progress = cli.Progress(len(examples), "questions featurized")
        features = squad_features.build_features(examples, tokenizer, self.window,
                                                 with_targets=True, progress=progress)
        progress.update(len(examples), force=True)
        inputs = features.inputs
        known = features.answerable >= 0
        if self.version == 1:
            # 1.1 has no "no answer": a window without the answer teaches nothing.
            known &= features.answerable == 1
        arrays = {key: inputs[key] for key in INPUT_KEYS}
        arrays.update(start_positions=features.start_positions,
                      end_positions=features.end_positions,
                      answerable=np.maximum(features.answerable, 0).astype(np.float32),
                      span_weight=known.astype(np.float32))
        windows = [examples[n].qas_id for n in inputs["example_index"]]
        return tasks.FeatureSet(arrays, windows, {"examples": examples, "features": features})

    def predictions(self, features: tasks.FeatureSet, outputs: dict):
        return postprocess.postprocess(
            features.extras["examples"], features.extras["features"], outputs["start_logits"],
            outputs["end_logits"], outputs["answerable_logits"] if self.version == 2 else None,
            self.n_best_size, self.max_answer_length)

    def evaluate(self, features: tasks.FeatureSet, outputs: dict) -> dict:
        examples = features.extras["examples"]
        predicted = self.predictions(features, outputs)
        na_scores = predicted.na_scores if self.version == 2 else None
        results = squad_metrics.evaluate(examples, predicted.answers, na_scores=na_scores,
                                         version=self.version)
        scores = {"exact": results["exact"], "f1": results["f1"]}
        final = predicted.answers
        if self.version == 2:
            # The recipe's 2.0 numbers: no-answer threshold chosen on dev to maximize F1.
            self.null_threshold = float(results["best_f1_thresh"])
            applied = squad_metrics.evaluate(examples, predicted.answers, na_scores=na_scores,
                                             na_threshold=self.null_threshold, version=2)
            scores = {key: float(applied[key]) for key in
                      ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")
                      if key in applied}
            scores.update(exact_no_threshold=results["exact"], f1_no_threshold=results["f1"],
                          null_threshold=self.null_threshold)
            final = predicted.final(self.null_threshold)
        if self.model_dir:
            self._write_outputs(io.join(self.model_dir, "dev_predictions.json"),
                                predicted, final)
            if self.version == 2:
                squad_metrics.write_json(io.join(self.model_dir, THRESHOLD_FILE),
                                         {"null_threshold": self.null_threshold})
        return scores

    def _write_outputs(self, path: str, predicted, final: dict) -> None:
        base = path[:-len("_predictions.json")] if path.endswith("_predictions.json") else \
            os.path.splitext(path)[0]
        squad_metrics.write_json(path, final)
        squad_metrics.write_json(base + "_nbest_predictions.json", predicted.nbest)
        if self.version == 2:
            squad_metrics.write_json(base + "_null_odds.json", predicted.na_scores)

    def write_predictions(self, path: str, features: tasks.FeatureSet, outputs: dict) -> None:
        """Official format: {question id: answer} ("" = no answer), JSON beside `path`."""
        predicted = self.predictions(features, outputs)
        final = predicted.answers
        if self.version == 2:
            final = predicted.final(0.0 if self.null_threshold is None else self.null_threshold)
        self._write_outputs(os.path.splitext(path)[0] + ".json", predicted, final)

    def metadata(self) -> dict:
        return {**super().metadata(), "version": self.version,
                "doc_stride": self.window.doc_stride,
                "max_query_length": self.window.max_query_length,
                "n_best_size": self.n_best_size, "max_answer_length": self.max_answer_length}


TASKS = (
    TaskName("squad", lambda options: SquadTask("squad", 2, options),
             "SQuAD 2.0 extractive QA (unanswerable questions): --train_file/--dev_file "
             "official JSON, or TFDS squad/v2.0", max_seq_length=QA_MAX_SEQ_LENGTH),
    TaskName("squadv1", lambda options: SquadTask("squadv1", 1, options),
             "SQuAD 1.1 extractive QA: --train_file/--dev_file official JSON, or TFDS "
             "squad/v1.1", max_seq_length=QA_MAX_SEQ_LENGTH),
)
