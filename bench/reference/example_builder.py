"""Plain-Python reference of the recipe's example packing and writing (the tests' oracle).

Written from docs/RECIPE.md "Data preparation" the way the reference code does it: one line at a
time, Python lists, one tf.train.Example per example. It is deliberately simple and slow; the
project's data_prep/example_builder.py must produce the same bytes from the same random state.
"""

import random
from collections.abc import Callable, Iterable

import tensorflow as tf


class ReferenceExampleBuilder:
    """Line-by-line packer: `add_line` returns a finished example (dict of lists) or None."""

    def __init__(self, tokenize: Callable[[str], list], max_length: int, cls_id: int,
                 sep_id: int, rng: random.Random):
        self.tokenize = tokenize
        self.max_length = max_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.rng = rng
        self.current_sentences = []
        self.current_length = 0
        self.target_length = max_length

    def add_line(self, line: str) -> dict | None:
        line = line.strip().replace("\n", " ")
        if not line and self.current_length != 0:  # a blank line ends the document
            return self.create_example()
        ids = self.tokenize(line)
        self.current_sentences.append(ids)
        self.current_length += len(ids)
        if self.current_length >= self.target_length:
            return self.create_example()
        return None

    def create_example(self) -> dict:
        if self.rng.random() < 0.1:  # sometimes a single segment, as in classification tasks
            first_target = 100000
        else:
            first_target = (self.target_length - 3) // 2  # room for [CLS] and two [SEP]
        first, second = [], []
        for sentence in self.current_sentences:
            if (len(first) == 0 or len(first) + len(sentence) < first_target or
                    (len(second) == 0 and len(first) < first_target and
                     self.rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        first = first[:self.max_length - 2]
        second = second[:max(0, self.max_length - len(first) - 3)]

        self.current_sentences = []
        self.current_length = 0
        if self.rng.random() < 0.05:
            self.target_length = self.rng.randint(5, self.max_length)
        else:
            self.target_length = self.max_length

        input_ids = [self.cls_id] + first + [self.sep_id]
        segment_ids = [0] * len(input_ids)
        if second:
            input_ids += second + [self.sep_id]
            segment_ids += [1] * (len(second) + 1)
        input_mask = [1] * len(input_ids)
        padding = [0] * (self.max_length - len(input_ids))
        return {"input_ids": input_ids + padding, "input_mask": input_mask + padding,
                "segment_ids": segment_ids + padding}


def to_tf_example(example: dict) -> bytes:
    features = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                for name, values in example.items()}
    proto = tf.train.Example(features=tf.train.Features(feature=features))
    return proto.SerializeToString(deterministic=True)


def file_lines(path: str) -> list:
    """A text file's lines as the reference reads them (split on "\\n" only)."""
    with open(path, "rb") as f:
        return f.read().decode("utf-8").split("\n")


def reference_examples(builder: ReferenceExampleBuilder, files: Iterable[str],
                       blanks_separate_docs: bool = True) -> list:
    """All examples of the files in order, one builder for all of them (one reference job)."""
    examples = []
    for path in files:
        for line in file_lines(path):
            line = line.strip()
            if line or blanks_separate_docs:
                example = builder.add_line(line)
                if example:
                    examples.append(example)
        example = builder.add_line("")  # the end of a file ends its document
        if example:
            examples.append(example)
    return examples


def write_tfrecord(path: str, examples: Iterable[dict]) -> None:
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(to_tf_example(example))
