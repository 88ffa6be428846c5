"""Extractive question answering (SQuAD 1.1 `squadv1`, SQuAD 2.0 `squad`): the task kind "span"
and its two fine-tuning tasks.

Plugs the SQuAD reader, sliding-window features, beam decoding and official evaluation of this
package into the fine-tuning runner (finetune/tasks.py). The model is the reference's QA model
(squad/model.py: joint start/end prediction, answerability from [CLS] and the start-weighted
token vectors). Every window trains, in 1.1 and 2.0: a window without the answer, and every
window of an impossible question, points start and end at [CLS]; the answerability target is the
question's is_impossible. Only a question whose answer offset matches no text has no target.

Rows of the feature arrays are windows; a question spans one or more of them. Evaluation writes
the official-format predictions (`<split>_predictions.json`), the no-answer scores
(`<split>_null_odds.json`) and the n-best lists into the model directory; for 2.0 it picks the
no-answer threshold that maximizes dev F1 and saves it (`squad_null_threshold.json`) for test
predictions and the exported model.
"""

import os
import sys

import numpy as np
import tensorflow as tf

from electra_tf import cli, io
from electra_tf.data import INPUT_KEYS
from electra_tf.finetune import tasks
from electra_tf.finetune.kinds import TaskKind, TaskName
from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import metrics as squad_metrics
from electra_tf.finetune.squad import postprocess, reader, serving
from electra_tf.finetune.squad.model import SpanModel

THRESHOLD_FILE = "squad_null_threshold.json"
# The recipe's QA windows hold 512 WordPieces.
QA_MAX_SEQ_LENGTH = 512


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
    output_keys = ("start_top_log_probs", "start_top_index", "end_top_log_probs",
                   "end_top_index", "impossible_logits")

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
        # The reference trains on every window (the answer's, or [CLS] for the others).
        known = features.answerable >= 0
        impossible = np.array([examples[n].is_impossible for n in inputs["example_index"]],
                              np.float32)
        arrays = {key: inputs[key] for key in INPUT_KEYS}
        arrays.update(start_positions=features.start_positions,
                      end_positions=features.end_positions,
                      is_impossible=impossible, span_weight=known.astype(np.float32))
        windows = [examples[n].qas_id for n in inputs["example_index"]]
        return tasks.FeatureSet(arrays, windows, {"examples": examples, "features": features})

    def predictions(self, features: tasks.FeatureSet, outputs: dict):
        return postprocess.postprocess(
            features.extras["examples"], features.extras["features"], outputs,
            self.version, self.n_best_size, self.max_answer_length)

    def evaluate(self, features: tasks.FeatureSet, outputs: dict) -> dict:
        examples = features.extras["examples"]
        predicted = self.predictions(features, outputs)
        results = squad_metrics.evaluate(examples, predicted.answers, version=self.version)
        scores = {"exact": results["exact"], "f1": results["f1"]}
        final = predicted.answers
        if self.version == 2:
            # The recipe's 2.0 numbers: no-answer threshold chosen on dev to maximize F1.
            na_scores = predicted.na_scores
            searched = squad_metrics.evaluate(examples, predicted.answers, na_scores=na_scores,
                                              version=2)
            self.null_threshold = squad_metrics.usable_threshold(searched, na_scores)
            applied = squad_metrics.evaluate(examples, predicted.answers, na_scores=na_scores,
                                             na_threshold=self.null_threshold, version=2)
            scores = {key: float(applied[key]) for key in
                      ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")
                      if key in applied}
            scores.update(exact_no_threshold=results["exact"], f1_no_threshold=results["f1"],
                          best_exact=searched["best_exact"], best_f1=searched["best_f1"],
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
