"""SQuAD 1.1 / 2.0 questions for the recipe's extractive QA fine-tuning, read and validated.

Sources: the official SQuAD JSON files ({"data": [{"title", "paragraphs": [{"context",
"qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}) or
TFDS `squad/v1.1`, `squad/v2.0`. Both become `SquadExample`s through one validation path:

- a file that is not valid JSON, or lacks a required field, is a UserError naming the file and
  the first problem (with its JSON path, e.g. `data[0].paragraphs[3].qas[1]`);
- a question with an empty context is a UserError naming the file and the question;
- an answer whose `answer_start` does not point at its text is counted and reported in
  `ReadStats`: its text still counts for evaluation, but it is no training target.
"""

import dataclasses
import json

from electra_tf.cli import UserError
from electra_tf.finetune import tasks

TFDS_NAMES = {1: "squad/v1.1", 2: "squad/v2.0"}


@dataclasses.dataclass
class SquadExample:
    qas_id: str
    question: str
    context: str
    # Gold answer texts (all of them, for evaluation) and the character offsets of those whose
    # offset matches their text (None where it does not).
    answer_texts: list[str]
    answer_starts: list[int | None]
    is_impossible: bool = False
    title: str = ""

    @property
    def train_answer(self) -> tuple[int, int] | None:
        """[start, end) characters of the first answer with a valid offset; None if none."""
        for text, start in zip(self.answer_texts, self.answer_starts):
            if start is not None:
                return start, start + len(text)
        return None


@dataclasses.dataclass
class ReadStats:
    source: str
    questions: int = 0
    unanswerable: int = 0
    bad_offsets: int = 0
    first_bad_offset: str = ""

    def report(self) -> str:
        line = (f"{self.source}: {self.questions:,} questions "
                f"({self.unanswerable:,} unanswerable)")
        if self.bad_offsets:
            line += (f"; {self.bad_offsets:,} answers whose answer_start does not match their "
                     f"text (first: {self.first_bad_offset}): kept for evaluation, not trained on")
        return line


class _Reader:
    """Builds examples from raw question records and keeps the statistics of one source."""

    def __init__(self, source: str, version: int):
        self.stats = ReadStats(source)
        self.version = version
        self.examples: list[SquadExample] = []

    def add(self, where: str, qas_id: str, question: str, context: str, texts: list[str],
            starts: list[int], is_impossible: bool, title: str = "") -> None:
        if not context.strip():
            raise UserError(f"{self.stats.source}: {where}: question {qas_id!r} has an empty "
                            "context")
        if is_impossible and self.version == 1:
            raise UserError(f"{self.stats.source}: {where}: question {qas_id!r} is unanswerable "
                            "(SQuAD 2.0 data): use --task=squad instead of --task=squadv1")
        checked = []
        for text, start in zip(texts, starts):
            if 0 <= start and context[start:start + len(text)] == text and text:
                checked.append(start)
                continue
            checked.append(None)
            if not is_impossible:
                self.stats.bad_offsets += 1
                if not self.stats.first_bad_offset:
                    self.stats.first_bad_offset = (f"question {qas_id!r}, answer {text!r} at "
                                                   f"{start}")
        self.stats.questions += 1
        self.stats.unanswerable += int(is_impossible)
        # Unanswerable v2.0 questions list "plausible answers" elsewhere; their gold is empty.
        self.examples.append(SquadExample(
            qas_id=qas_id, question=question, context=context,
            answer_texts=[] if is_impossible else texts,
            answer_starts=[] if is_impossible else checked,
            is_impossible=is_impossible, title=title))


def _field(record, key: str, kind, where: str, source: str, default=None):
    if not isinstance(record, dict):
        raise UserError(f"{source}: {where}: expected a JSON object, got "
                        f"{type(record).__name__}")
    if key not in record:
        if default is not None:
            return default
        raise UserError(f"{source}: {where}: missing {key!r}")
    value = record[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        expected = " or ".join(k.__name__ for k in kinds)
        raise UserError(f"{source}: {where}.{key}: expected {expected}, got "
                        f"{type(value).__name__}")
    return value


def read_squad_json(path: str, version: int) -> tuple[list[SquadExample], ReadStats]:
    """Examples of an official-format SQuAD JSON file (`version` 1 or 2)."""
    try:
        root = json.loads(tasks.read_data_file(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column "
                        f"{e.colno}") from None
    reader = _Reader(path, version)
    seen = set()
    for i, article in enumerate(_field(root, "data", list, "top level", path)):
        where = f"data[{i}]"
        title = _field(article, "title", str, where, path, default="")
        for j, paragraph in enumerate(_field(article, "paragraphs", list, where, path)):
            where = f"data[{i}].paragraphs[{j}]"
            context = _field(paragraph, "context", str, where, path)
            for k, qa in enumerate(_field(paragraph, "qas", list, where, path)):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                qas_id = str(_field(qa, "id", (str, int), where, path))
                if qas_id in seen:
                    raise UserError(f"{path}: {where}: duplicate question id {qas_id!r}")
                seen.add(qas_id)
                question = _field(qa, "question", str, where, path)
                is_impossible = _field(qa, "is_impossible", bool, where, path, default=False)
                texts, starts = [], []
                for n, answer in enumerate(_field(qa, "answers", list, where, path, default=[])):
                    texts.append(_field(answer, "text", str, f"{where}.answers[{n}]", path))
                    starts.append(_field(answer, "answer_start", int, f"{where}.answers[{n}]",
                                         path))
                reader.add(where, qas_id, question, context, texts, starts, is_impossible,
                           title)
    if not reader.examples:
        raise UserError(f"{path}: no questions")
    return reader.examples, reader.stats


def read_squad_tfds(split: str, version: int, data_dir: str | None = None
                    ) -> tuple[list[SquadExample], ReadStats]:
    """Examples of TFDS `squad/v1.1` or `squad/v2.0` (`split`: "train" or "validation")."""
    import tensorflow_datasets as tfds

    name = TFDS_NAMES[version]
    dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    reader = _Reader(f"tfds:{name}:{split}", version)

    def text(value) -> str:
        return value.decode("utf-8")

    for n, record in enumerate(tfds.as_numpy(dataset)):
        answers = record["answers"]
        reader.add(f"record {n}", text(record["id"]), text(record["question"]),
                   text(record["context"]), [text(t) for t in answers["text"]],
                   [int(s) for s in answers["answer_start"]],
                   bool(record.get("is_impossible", False)), text(record["title"]))
    if not reader.examples:
        raise UserError(f"tfds:{name}:{split}: no questions")
    return reader.examples, reader.stats
