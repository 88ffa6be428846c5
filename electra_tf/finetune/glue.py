"""The GLUE tasks the ELECTRA recipe fine-tunes on, read from TFDS or from GLUE's TSV files.

cola, sst2, mrpc, stsb (regression), qqp, mnli (matched and mismatched dev/test), qnli, rte. With
`--data_dir` the original GLUE files are read (the directory of one task, e.g. glue_data/RTE, or the
glue_data directory holding them all); without it the TFDS `glue/<task>` data set (in
`--tfds_data_dir`). As in the reference, MRPC and STS-B train on both sentence orders (each training
pair again with A and B swapped; dev and test as they are) and STS-B regresses the score divided by
5 (reported on GLUE's 0-5 scale). Labels are GLUE's strings whatever the source, so predictions TSVs
are in GLUE's submission format and a model trained from one source evaluates on the other.
"""

import csv
import dataclasses
import functools

import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.finetune import tasks
from electra_tf.finetune.kinds import TaskName

BINARY = ("0", "1")
NLI = ("entailment", "not_entailment")


@dataclasses.dataclass(frozen=True)
class GlueSpec:
    """Where one GLUE task's fields are in its TSV files and in TFDS."""

    name: str
    directory: str                     # the task's directory in glue_data
    labels: tuple | None            # None: regression
    text_a: object                     # TSV column: header name, or index when header is None
    text_b: object = None
    label: object = None
    header: bool = True                # whether train/dev files start with a header line
    test_text_a: object = None         # test-file columns where they differ (test has a header)
    test_text_b: object = None
    test_index: str = "index"
    tfds_text: tuple = ()              # TFDS feature names of text_a (, text_b)
    metric_names: tuple = ("accuracy",)
    primary_metric: str = "accuracy"
    epochs: float = 3.0
    eval_splits: tuple = ("dev",)
    test_splits: tuple = ("test",)
    skip_malformed: bool = False       # QQP's train file has rows with missing fields
    double_unordered: bool = False     # train on both orders of each pair (MRPC, STS-B)
    label_scale: float = 1.0           # regression targets are divided by this (STS-B: 5)


SPECS = {spec.name: spec for spec in (
    GlueSpec("cola", "CoLA", BINARY, text_a=3, label=1, header=False, test_text_a="sentence",
             tfds_text=("sentence",), metric_names=("mcc", "accuracy"), primary_metric="mcc"),
    GlueSpec("sst2", "SST-2", BINARY, text_a="sentence", label="label",
             tfds_text=("sentence",)),
    GlueSpec("mrpc", "MRPC", BINARY, text_a="#1 String", text_b="#2 String", label="Quality",
             tfds_text=("sentence1", "sentence2"), metric_names=("accuracy", "f1"),
             primary_metric="f1", double_unordered=True),
    GlueSpec("stsb", "STS-B", None, text_a="sentence1", text_b="sentence2", label="score",
             tfds_text=("sentence1", "sentence2"), metric_names=("pearson", "spearman"),
             primary_metric="spearman", epochs=10.0, double_unordered=True, label_scale=5.0),
    GlueSpec("qqp", "QQP", BINARY, text_a="question1", text_b="question2", label="is_duplicate",
             test_index="id", tfds_text=("question1", "question2"),
             metric_names=("accuracy", "f1"), primary_metric="f1", skip_malformed=True),
    GlueSpec("mnli", "MNLI", ("contradiction", "entailment", "neutral"), text_a="sentence1",
             text_b="sentence2", label="gold_label", tfds_text=("premise", "hypothesis"),
             eval_splits=("dev_matched", "dev_mismatched"),
             test_splits=("test_matched", "test_mismatched")),
    GlueSpec("qnli", "QNLI", NLI, text_a="question", text_b="sentence", label="label",
             tfds_text=("question", "sentence")),
    GlueSpec("rte", "RTE", NLI, text_a="sentence1", text_b="sentence2", label="label",
             tfds_text=("sentence1", "sentence2"), epochs=10.0),
)}

# Our split names -> TFDS split names.
TFDS_SPLITS = {"train": "train", "dev": "validation", "test": "test",
               "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched",
               "test_matched": "test_matched", "test_mismatched": "test_mismatched"}


class GlueTsvReader:
    """One GLUE task's examples from the original TSV files (quote characters are text)."""

    def __init__(self, spec: GlueSpec, data_dir: str):
        self.spec = spec
        nested = io.join(data_dir, spec.directory)
        # isdir answers False where the filesystem refuses (no credentials, no such bucket)
        io.checked(tf.io.gfile.exists, data_dir, "--data_dir")
        self.directory = nested if tf.io.gfile.isdir(nested) else data_dir
        if not tf.io.gfile.isdir(self.directory):
            raise UserError(f"--data_dir={data_dir}: directory not found")
        self._cache: dict = {}

    def path(self, split: str) -> str:
        return io.join(self.directory, f"{split}.tsv")

    def has_split(self, split: str) -> bool:
        path = self.path(split)
        return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)

    def read(self, split: str) -> list:
        if split not in self._cache:
            self._cache[split] = self._read(split)
        return self._cache[split]

    def _read(self, split: str) -> list:
        path = self.path(split)
        if not self.has_split(split):
            raise UserError(f"{path}: file not found (GLUE {self.spec.name} needs "
                            f"{split}.tsv in --data_dir)")
        records = tasks.read_delimited(path, "\t", csv.QUOTE_NONE)
        spec = self.spec
        is_test = split.startswith("test")
        has_header = spec.header or is_test
        header = records[0][1] if has_header and records else []
        columns = {name.strip(): i for i, name in enumerate(header)}

        def locate(column) -> int | None:
            if column is None or isinstance(column, int):
                return column
            if column not in columns:
                raise UserError(f"{path}: no column {column!r}; the columns are: "
                                f"{', '.join(h.strip() for h in header)}")
            return columns[column]

        if is_test:
            text_a = locate(spec.test_text_a or spec.text_a)
            text_b = locate(spec.test_text_b or spec.text_b)
            index = locate(spec.test_index)
            label = None
        else:
            text_a, text_b, label, index = (locate(spec.text_a), locate(spec.text_b),
                                            locate(spec.label), None)
        needed = 1 + max(i for i in (text_a, text_b, label, index) if i is not None)
        examples = []
        for line, fields in records[1:] if has_header else records:
            if not fields:
                continue
            if len(fields) < needed:
                if spec.skip_malformed and not is_test:
                    continue
                raise UserError(f"{path}:{line}: {len(fields)} fields, expected at least {needed}")
            where = f"{path}:{line}"
            examples.append(tasks.Example(
                guid=fields[index] if index is not None else str(len(examples)),
                text_a=fields[text_a],
                text_b=fields[text_b] if text_b is not None else None,
                label=None if label is None else self._label(fields[label], where),
                source=where))
        if not examples:
            raise UserError(f"{path}: no examples")
        return examples

    def _label(self, text: str, where: str):
        text = text.strip()
        if self.spec.labels is not None:
            return text
        try:
            return float(text)
        except ValueError:
            raise UserError(f"{where}: score {text!r} is not a number") from None


class GlueTfdsReader:
    """One GLUE task's examples from the TFDS data set glue/<task>."""

    def __init__(self, spec: GlueSpec, data_dir: str | None):
        self.spec = spec
        self.data_dir = data_dir or None
        self._builder = None
        self._cache: dict = {}

    def builder(self):
        if self._builder is None:
            import tensorflow_datasets as tfds  # only this source needs TFDS
            self._builder = tfds.builder(f"glue/{self.spec.name}", data_dir=self.data_dir)
        return self._builder

    def has_split(self, split: str) -> bool:
        return split == "train" or split in self.spec.eval_splits + self.spec.test_splits

    def read(self, split: str) -> list:
        if split not in self._cache:
            self._cache[split] = self._read(split)
        return self._cache[split]

    def _read(self, split: str) -> list:
        import tensorflow_datasets as tfds
        builder = self.builder()
        try:
            builder.download_and_prepare()
            dataset = builder.as_dataset(split=TFDS_SPLITS[split], shuffle_files=False)
        except Exception as e:  # TFDS raises many types (network, checksum, missing split)
            raise UserError(f"TFDS glue/{self.spec.name} split {TFDS_SPLITS[split]!r}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            ) from None
        label_names = builder.info.features["label"].names if self.spec.labels else None
        is_test = split.startswith("test")
        examples = []
        for row in tfds.as_numpy(dataset):
            texts = [row[name].decode("utf-8") for name in self.spec.tfds_text]
            label = None
            if not is_test:
                if label_names is None:
                    label = float(row["label"])
                else:
                    label = self._label(label_names, int(row["label"]))
            examples.append(tasks.Example(
                guid=str(int(row["idx"])), text_a=texts[0],
                text_b=texts[1] if len(texts) > 1 else None, label=label,
                source=f"glue/{self.spec.name}[{TFDS_SPLITS[split]}] idx {int(row['idx'])}"))
        if not examples:
            raise UserError(f"TFDS glue/{self.spec.name} split {TFDS_SPLITS[split]!r} is empty")
        return examples

    def _label(self, names: list, value: int) -> str:
        # TFDS names binary labels by meaning (e.g. "acceptable"); GLUE's files say "0"/"1".
        return str(value) if self.spec.labels == BINARY else names[value]


class DoubledTraining:
    """The reference's double_unordered: the training split gets every pair a second time with
    its two sentences swapped (right after the original); other splits are read as they are."""

    def __init__(self, reader):
        self.reader = reader

    def has_split(self, split: str) -> bool:
        return self.reader.has_split(split)

    def read(self, split: str) -> list:
        examples = self.reader.read(split)
        if split != "train":
            return examples
        doubled = []
        for example in examples:
            doubled.append(example)
            if example.text_b is not None:
                doubled.append(dataclasses.replace(
                    example, guid=f"{example.guid}-swapped", text_a=example.text_b,
                    text_b=example.text_a))
        return doubled


def make_task(spec: GlueSpec, options) -> tasks.SequenceTask:
    if options.data_dir:
        reader = GlueTsvReader(spec, options.data_dir)
    else:
        reader = GlueTfdsReader(spec, options.tfds_data_dir)
    if spec.double_unordered:
        reader = DoubledTraining(reader)
    return tasks.SequenceTask(
        spec.name, reader, regression=spec.labels is None, labels=spec.labels,
        metric_names=spec.metric_names, primary_metric=spec.primary_metric,
        default_epochs=spec.epochs, eval_splits=spec.eval_splits, test_splits=spec.test_splits,
        label_scale=spec.label_scale)


def _description(spec: GlueSpec) -> str:
    kind = "regression" if spec.labels is None else f"{len(spec.labels)} classes"
    return f"GLUE {spec.directory} ({kind}) from --data_dir TSVs or TFDS glue/{spec.name}"


TASKS = tuple(TaskName(name, functools.partial(make_task, spec), _description(spec))
              for name, spec in SPECS.items())
