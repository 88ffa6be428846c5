"""The fine-tuning tasks of the ELECTRA recipe: the contract the runner drives, and the sentence
and tagging tasks.

A task turns a data source into model features, builds the task model of its kind (kinds.py:
the discriminator `Backbone` plus a head, model.py), scores the model's outputs with the metrics
GLUE/CoNLL report and writes test predictions. `Task` is the plug-in contract; `SequenceTask`
(classification and regression, one or two texts) and `TaggingTask` (word-level tags) are the
built-in ones, fed by the readers in glue.py, tabular.py and conll.py; squad/task.py shows how a
task of another kind plugs in. The task description saved in every fine-tuning model_dir
(`TASK_FILE`) is what export and predict-only runs rebuild the model from.
"""

import abc
import csv
import dataclasses
import io as stdio
from collections.abc import Sequence
from typing import Union

import numpy as np
import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.finetune import features as features_lib
from electra_tf.finetune import metrics as metrics_lib
from electra_tf.finetune import model as model_lib
from electra_tf.finetune.kinds import TaskKind

TASK_FILE = "finetune_task.json"


def load_task_metadata(model_dir: str) -> dict | None:
    """The task description saved in a fine-tuning model_dir, or None if there is none.

    It has "task", "kind", "labels", "vocab_file" (relative to model_dir), "do_lower_case",
    "strip_accents", "max_seq_length", "text_pairs" and what the task adds (tasks.Task.metadata).
    """
    path = io.join(model_dir, TASK_FILE)
    if not tf.io.gfile.exists(path):
        return None
    return io.read_json(path)


@dataclasses.dataclass(frozen=True)
class Example:
    """One sentence (pair) example; `guid` names it in predictions, `source` in errors."""

    guid: str
    text_a: str
    text_b: str | None = None
    label: Union[str, float, None] = None
    source: str = ""


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence of words with one tag per word (tags None for unlabelled test data)."""

    guid: str
    words: tuple
    tags: tuple | None = None
    source: str = ""


@dataclasses.dataclass
class FeatureSet:
    """Model inputs for a list of examples, row i of every array belonging to examples[i].

    `arrays` holds what the model reads (input_ids, input_mask, segment_ids, labels...); `extras`
    holds what evaluation needs besides the model outputs (e.g. word positions for tagging).
    """

    arrays: dict
    examples: list
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def num_examples(self) -> int:
        return len(self.examples)


class Task(abc.ABC):
    """What the runner needs from a fine-tuning task.

    Subclasses set `task_kind` (the `TaskKind` that builds and serves their model),
    `primary_metric` (picks the best of several trials) and `output_keys` (the per-example model
    outputs that `evaluate`/`write_predictions` consume).
    """

    task_kind: TaskKind
    primary_metric: str = "accuracy"
    output_keys: tuple = ()

    def __init__(self, name: str, default_epochs: float = 3.0,
                 eval_splits: Sequence[str] = ("dev",), test_splits: Sequence[str] = ("test",)):
        self.name = name
        self.default_epochs = default_epochs
        self.eval_splits = tuple(eval_splits)
        self.test_splits = tuple(test_splits)

    @property
    def kind(self) -> str:
        return self.task_kind.name

    @abc.abstractmethod
    def has_split(self, split: str) -> bool:
        """Whether data for `split` ("train", one of eval_splits or test_splits) was given."""

    @abc.abstractmethod
    def read(self, split: str) -> list:
        """The examples of a split; UserError for unreadable or malformed data."""

    def prepare(self, model_dir: str, do_train: bool) -> None:
        """Settles what features need (e.g. the label set) before they are built; refuses a
        model_dir fine-tuned for another task."""
        saved = load_task_metadata(model_dir)
        if saved is not None and saved.get("task") != self.name:
            raise UserError(f"{io.join(model_dir, TASK_FILE)}: model_dir holds a "
                            f"{saved.get('task')!r} model, not {self.name!r}; use another "
                            "--model_dir")

    @abc.abstractmethod
    def featurize(self, examples: list, tokenizer, max_seq_length: int) -> FeatureSet:
        """Model inputs (and labels, zeros where unlabelled) for `examples`."""

    def build_model(self, config):
        """A keras.Model following the training-loop contract, built from `metadata()`."""
        return self.task_kind.build_model(self.metadata(), config)

    @abc.abstractmethod
    def evaluate(self, features: FeatureSet, outputs: dict) -> dict:
        """Metrics {name: float} from the model outputs (`output_keys`, one row per example)."""

    @abc.abstractmethod
    def write_predictions(self, path: str, features: FeatureSet, outputs: dict) -> None:
        """Writes the predictions for `features` to `path` (atomically)."""

    def metadata(self) -> dict:
        """JSON-able description saved in the model directory (export rebuilds the task from it)."""
        return {"task": self.name, "kind": self.kind}


class LabelledTask(Task):
    """A task whose label set is fixed (GLUE) or discovered from the training data and saved."""

    def __init__(self, name: str, labels: Sequence[str] | None = None, **kwargs):
        super().__init__(name, **kwargs)
        self.fixed_labels = labels is not None
        self.labels: list | None = list(labels) if labels is not None else None

    @abc.abstractmethod
    def example_labels(self, examples: list) -> list:
        """Every gold label string in `examples` (tags for tagging), for discovery and checks."""

    def prepare(self, model_dir: str, do_train: bool) -> None:
        super().prepare(model_dir, do_train)
        saved = load_task_metadata(model_dir)
        if self.labels is None:
            if saved is not None:
                self.labels = list(saved["labels"])
            elif do_train:
                found = self.example_labels(self.read("train"))
                self.labels = sorted(set(found))
                if len(self.labels) < 2 and self.kind != "tagging":
                    raise UserError(f"the training data of task {self.name!r} has only the "
                                    f"label(s) {self.labels}; classification needs at least 2")
            else:
                raise UserError(f"{io.join(model_dir, TASK_FILE)} not found: without "
                                "--do_train the labels come from a fine-tuned model_dir")
        elif saved is not None and saved.get("labels") != self.labels:
            raise UserError(f"{io.join(model_dir, TASK_FILE)}: labels {saved.get('labels')} "
                            f"differ from the task's {self.labels}; use another --model_dir")
        if do_train and saved is not None and not self.fixed_labels:
            unseen = sorted(set(self.example_labels(self.read("train"))) - set(self.labels))
            if unseen:
                raise UserError(f"training labels {unseen} are not in the labels {self.labels} "
                                f"saved in {io.join(model_dir, TASK_FILE)}")

    def label_ids(self, examples: list, labels_of) -> list:
        """Maps label strings to ids; a label outside the label set is a one-line UserError."""
        index = {label: i for i, label in enumerate(self.labels)}
        ids = []
        for example in examples:
            row = []
            for label in labels_of(example):
                if label not in index:
                    known = ("is not a label of this task" if self.fixed_labels
                             else "was never seen in the training data")
                    raise UserError(f"{example.source}: label {label!r} {known} (labels: "
                                    f"{', '.join(self.labels)})")
                row.append(index[label])
            ids.append(row)
        return ids

    def metadata(self) -> dict:
        return {**super().metadata(), "labels": self.labels}


class SequenceTask(LabelledTask):
    """Classification or regression of one text or a text pair from the [CLS] vector.

    `reader` supplies the examples per split (`read(split)`, `has_split(split)`); `metric_names`
    picks from accuracy, f1 (of label 1, as GLUE for MRPC/QQP), macro_f1, mcc, pearson, spearman.
    """

    def __init__(self, name: str, reader, *, regression: bool = False,
                 labels: Sequence[str] | None = None, metric_names: Sequence[str] = (),
                 primary_metric: str | None = None, label_scale: float = 1.0, **kwargs):
        super().__init__(name, labels=labels, **kwargs)
        self.reader = reader
        self.regression = regression
        # Regression trains on label / label_scale; predictions are reported times it.
        self.label_scale = float(label_scale)
        self.task_kind = model_lib.REGRESSION if regression else model_lib.CLASSIFICATION
        self.metric_names = tuple(metric_names) or (
            ("pearson", "spearman") if regression else ("accuracy", "macro_f1", "mcc"))
        self.primary_metric = primary_metric or self.metric_names[0]
        self.output_keys = ("predictions",) if regression else ("probabilities",)

    def has_split(self, split: str) -> bool:
        return self.reader.has_split(split)

    def read(self, split: str) -> list:
        return self.reader.read(split)

    def example_labels(self, examples: list) -> list:
        return [e.label for e in examples if e.label is not None]

    def prepare(self, model_dir: str, do_train: bool) -> None:
        if self.regression:
            Task.prepare(self, model_dir, do_train)  # no label set to settle
        else:
            super().prepare(model_dir, do_train)

    def featurize(self, examples: list, tokenizer, max_seq_length: int) -> FeatureSet:
        if self.regression:
            labels = {"label": np.array(
                [0.0 if e.label is None else e.label / self.label_scale for e in examples],
                dtype=np.float32)}
        else:
            ids = self.label_ids(examples, lambda e: [] if e.label is None else [e.label])
            labels = {"label_ids": np.array([row[0] if row else 0 for row in ids], np.int32)}
        has_pairs = any(e.text_b is not None for e in examples)
        arrays = features_lib.encode_texts(
            tokenizer, [e.text_a for e in examples],
            [e.text_b or "" for e in examples] if has_pairs else None, max_seq_length)
        return FeatureSet({**arrays, **labels}, examples)

    def evaluate(self, features: FeatureSet, outputs: dict) -> dict:
        examples = features.examples
        if any(e.label is None for e in examples):
            raise ValueError("evaluate needs labelled examples")
        if self.regression:
            gold = np.array([e.label for e in examples], dtype=np.float64)
            predicted = np.asarray(outputs["predictions"], np.float64) * self.label_scale
            scores = {"pearson": metrics_lib.pearson(gold, predicted),
                      "spearman": metrics_lib.spearman(gold, predicted),
                      "mse": float(np.mean((gold - predicted) ** 2))}
        else:
            gold = features.arrays["label_ids"]
            predicted = np.argmax(outputs["probabilities"], axis=-1)
            scores = {"accuracy": metrics_lib.accuracy(gold, predicted),
                      "f1": metrics_lib.f1(gold, predicted, positive=1),
                      "macro_f1": metrics_lib.macro_f1(gold, predicted, len(self.labels)),
                      "mcc": metrics_lib.mcc(gold, predicted)}
        return {name: scores[name] for name in self.metric_names}

    def prediction_rows(self, features: FeatureSet, outputs: dict) -> tuple[list, list]:
        """Header and rows of the predictions TSV: index, prediction, probability per label."""
        if self.regression:
            return (["index", "prediction"],
                    [[e.guid, f"{p * self.label_scale:.6g}"]
                     for e, p in zip(features.examples, outputs["predictions"])])
        probabilities = outputs["probabilities"]
        header = ["index", "prediction"] + [f"probability_{label}" for label in self.labels]
        rows = [[e.guid, self.labels[int(np.argmax(p))]] + [f"{q:.6f}" for q in p]
                for e, p in zip(features.examples, probabilities)]
        return header, rows

    def write_predictions(self, path: str, features: FeatureSet, outputs: dict) -> None:
        header, rows = self.prediction_rows(features, outputs)
        write_tsv(path, header, rows)

    def metadata(self) -> dict:
        metadata = super().metadata()
        if self.regression:
            metadata["label_scale"] = self.label_scale
        return metadata


class TaggingTask(LabelledTask):
    """Word-level tagging (NER, chunking): label on the first WordPiece of each word, span F1."""

    task_kind = model_lib.TAGGING
    primary_metric = "f1"
    output_keys = ("predictions",)

    def __init__(self, name: str, reader, **kwargs):
        super().__init__(name, **kwargs)
        self.reader = reader

    def has_split(self, split: str) -> bool:
        return self.reader.has_split(split)

    def read(self, split: str) -> list:
        return self.reader.read(split)

    def example_labels(self, examples: list) -> list:
        return [tag for s in examples if s.tags is not None for tag in s.tags]

    def featurize(self, examples: list, tokenizer, max_seq_length: int) -> FeatureSet:
        ids = self.label_ids(examples, lambda s: s.tags or ())
        arrays, word_positions = features_lib.encode_words(
            tokenizer, [s.words for s in examples],
            [row if s.tags is not None else None for s, row in zip(examples, ids)],
            max_seq_length)
        return FeatureSet(arrays, examples, {"word_positions": word_positions})

    def predicted_tags(self, features: FeatureSet, outputs: dict) -> list:
        """Tags per word; a word cut off by max_seq_length gets `cut_off_tag`."""
        fallback = features_lib.cut_off_tag(self.labels)
        tags = []
        for row, positions in zip(outputs["predictions"], features.extras["word_positions"]):
            tags.append([self.labels[int(row[p])] if p >= 0 else fallback for p in positions])
        return tags

    def evaluate(self, features: FeatureSet, outputs: dict) -> dict:
        gold = [s.tags for s in features.examples]
        if any(tags is None for tags in gold):
            raise ValueError("evaluate needs tagged sentences")
        predicted = self.predicted_tags(features, outputs)
        scores = metrics_lib.span_scores(gold, predicted)
        correct = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
        scores["accuracy"] = correct / max(1, sum(len(g) for g in gold))
        return scores

    def write_predictions(self, path: str, features: FeatureSet, outputs: dict) -> None:
        """CoNLL format: word TAB predicted tag, a blank line after each sentence."""
        lines = []
        for sentence, tags in zip(features.examples, self.predicted_tags(features, outputs)):
            lines.extend(f"{w}\t{t}\n" for w, t in zip(sentence.words, tags))
            lines.append("\n")
        io.write_text(path, "".join(lines))


def write_tsv(path: str, header: list, rows: list) -> None:
    lines = ["\t".join(header) + "\n"]
    lines.extend("\t".join(str(v) for v in row) + "\n" for row in rows)
    io.write_text(path, "".join(lines))


def read_data_file(path: str) -> str:
    """The UTF-8 text of a data file on any filesystem (tf.io.gfile), a byte-order mark
    dropped; UserError naming the file when it is missing or unreadable."""
    try:
        if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
            raise UserError(f"{path}: file not found")
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
    except tf.errors.OpError as e:  # e.g. a bucket that does not exist, no credentials
        raise UserError(f"{path}: {io.first_line(e)}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_delimited(path: str, delimiter: str, quoting: int = csv.QUOTE_MINIMAL):
    """(line number, fields) for each record of a TSV/CSV file; UserError if it cannot be read.

    TSV files are read without quote handling (one record per line, as GLUE and the demo data
    write them: a lone '"' in a sentence is text); CSV files follow RFC 4180 quoting.
    """
    text = read_data_file(path)
    # newline="": the csv module sees the line ends as they are (quoted fields may hold them).
    reader = csv.reader(stdio.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting,
                        **({"quotechar": None} if quoting == csv.QUOTE_NONE else {}))
    try:
        records = []
        line = reader.line_num + 1
        for fields in reader:
            records.append((line, fields))
            line = reader.line_num + 1
        return records
    except csv.Error as e:
        raise UserError(f"{path}:{reader.line_num}: {e}") from None
