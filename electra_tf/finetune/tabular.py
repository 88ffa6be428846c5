"""Any text classification or regression data set from TSV/CSV files (the recipe's sentence tasks
on the user's own data): `--task=classification` or `--task=regression`.

Columns are found by the header line (`--text_column`, optional `--text_b_column`,
`--label_column`). Classification labels are discovered from the training file and saved in the
model directory; a label in the dev file that training never saw is an error. `.tsv` files are
tab-separated without quoting, `.csv` files follow RFC 4180 quoting.
"""

import csv
import functools
import os

from electra_tf.cli import UserError
from electra_tf.finetune import tasks
from electra_tf.finetune.kinds import TaskName

SPLIT_FLAGS = {"train": "--train_file", "dev": "--dev_file", "test": "--test_file"}


def file_format(path: str) -> tuple[str, int]:
    """(delimiter, csv quoting) chosen by the file's extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".tsv":
        return "\t", csv.QUOTE_NONE
    if extension == ".csv":
        return ",", csv.QUOTE_MINIMAL
    raise UserError(f"{path}: cannot tell the format; name the file *.tsv or *.csv")


class FileReader:
    """One file per split (--train_file, --dev_file, --test_file), each read once."""

    def __init__(self, files: dict):
        self.files = {split: path for split, path in files.items() if path}
        self._cache: dict = {}

    def has_split(self, split: str) -> bool:
        return split in self.files

    def read(self, split: str) -> list:
        if split not in self._cache:
            if split not in self.files:
                raise UserError(f"{SPLIT_FLAGS.get(split, split)} is needed for this run")
            self._cache[split] = self._read_file(self.files[split], split)
        return self._cache[split]

    def _read_file(self, path: str, split: str) -> list:
        raise NotImplementedError


class TableReader(FileReader):
    """Examples from header-named columns of one TSV/CSV file per split."""

    def __init__(self, files: dict, text_column: str, text_b_column: str | None,
                 label_column: str, regression: bool):
        super().__init__(files)
        self.text_column = text_column
        self.text_b_column = text_b_column or None
        self.label_column = label_column
        self.regression = regression

    def _read_file(self, path: str, split: str) -> list:
        delimiter, quoting = file_format(path)
        records = tasks.read_delimited(path, delimiter, quoting)
        if not records:
            raise UserError(f"{path}: empty file (expected a header line and examples)")
        _, header = records[0]
        column = {name.strip(): i for i, name in enumerate(header)}

        def index(name: str, flag: str) -> int:
            if name not in column:
                raise UserError(f"{path}: no column {name!r} ({flag}); the columns are: "
                                f"{', '.join(h.strip() for h in header)}")
            return column[name]

        text_a = index(self.text_column, "--text_column")
        text_b = index(self.text_b_column, "--text_b_column") if self.text_b_column else None
        # Test files may come without labels; training and dev files must have them.
        label = (index(self.label_column, "--label_column")
                 if split != "test" or self.label_column in column else None)
        examples = []
        for line, fields in records[1:]:
            if not fields or fields == [""]:
                continue
            if len(fields) != len(header):
                raise UserError(f"{path}:{line}: {len(fields)} fields, but the header has "
                                f"{len(header)}")
            value = None
            if label is not None:
                value = self._label(fields[label].strip(), f"{path}:{line}")
            examples.append(tasks.Example(
                guid=str(len(examples)), text_a=fields[text_a],
                text_b=fields[text_b] if text_b is not None else None,
                label=value, source=f"{path}:{line}"))
        if not examples:
            raise UserError(f"{path}: no examples after the header line")
        return examples

    def _label(self, text: str, where: str):
        if not text:
            raise UserError(f"{where}: empty label in column {self.label_column!r}")
        if not self.regression:
            return text
        try:
            return float(text)
        except ValueError:
            raise UserError(f"{where}: label {text!r} is not a number (--task=regression)") \
                from None


def _make(options, regression: bool) -> tasks.SequenceTask:
    name = "regression" if regression else "classification"
    if not options.text_column or not options.label_column:
        raise UserError(f"--task={name} needs --text_column and --label_column")
    reader = TableReader(
        {"train": options.train_file, "dev": options.dev_file, "test": options.test_file},
        options.text_column, options.text_b_column, options.label_column, regression)
    return tasks.SequenceTask(name, reader, regression=regression)


TASKS = (
    TaskName("classification", functools.partial(_make, regression=False),
             "text (pair) classification from TSV/CSV files, labels found in --train_file"),
    TaskName("regression", functools.partial(_make, regression=True),
             "text (pair) regression from TSV/CSV files with a numeric label column"),
)
