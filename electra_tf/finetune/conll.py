"""Token tagging (named entities, chunking) from CoNLL-style files: the recipe's tagging tasks.

One token per line with whitespace-separated columns (`--token_column`, `--tag_column`, counted
from 0, negative from the end), a blank line between sentences, `-DOCSTART-` lines skipped.
Every line of a file has the column count of its first token line; a line that does not is an
error naming the file and line. Tags are discovered from the training file; scoring is span F1
as conlleval computes it (metrics.py). `--task=chunking` is the same task at the reference's
chunking length, 256 WordPieces.
"""


from electra_tf.cli import UserError
from electra_tf.finetune import tasks
from electra_tf.finetune.kinds import TaskName
from electra_tf.finetune.tabular import FileReader


def read_conll(path: str, token_column: int, tag_column: int | None) -> list:
    """Sentences of `path`; tags None when `tag_column` is None (unlabelled test files)."""
    lines = tasks.read_data_file(path).splitlines()
    sentences = []
    words, tags, start, width = [], [], 0, None

    def close():
        if words:
            sentences.append(tasks.TaggedSentence(
                guid=str(len(sentences)), words=tuple(words),
                tags=tuple(tags) if tag_column is not None else None, source=f"{path}:{start}"))
        words.clear()
        tags.clear()

    for number, line in enumerate(lines, start=1):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            close()
            continue
        if width is None:
            width = len(columns)
            needed = [c for c in (token_column, tag_column) if c is not None]
            bad = [c for c in needed if not -width <= c < width]
            if bad:
                raise UserError(f"{path}:{number}: {width} column(s), so there is no column "
                                f"{bad[0]} (--token_column/--tag_column count from 0)")
        if len(columns) != width:
            raise UserError(f"{path}:{number}: {len(columns)} columns, but the file's first "
                            f"token line has {width}")
        if not words:
            start = number
        words.append(columns[token_column])
        if tag_column is not None:
            tags.append(columns[tag_column])
    close()
    if not sentences:
        raise UserError(f"{path}: no sentences")
    return sentences


class ConllReader(FileReader):
    """Tagged sentences of one CoNLL file per split; a one-column test file has no tags."""

    def __init__(self, files: dict, token_column: int, tag_column: int):
        super().__init__(files)
        self.token_column = token_column
        self.tag_column = tag_column

    def _read_file(self, path: str, split: str) -> list:
        tag_column = self.tag_column
        if split == "test" and _single_column(path):
            tag_column = None
        return read_conll(path, self.token_column, tag_column)


def _single_column(path: str) -> bool:
    for line in tasks.read_data_file(path).splitlines():
        columns = line.split()
        if columns and columns[0] != "-DOCSTART-":
            return len(columns) == 1
    return False


def _make(name: str, options) -> tasks.TaggingTask:
    reader = ConllReader(
        {"train": options.train_file, "dev": options.dev_file, "test": options.test_file},
        options.token_column, options.tag_column)
    return tasks.TaggingTask(name, reader)


# The reference fine-tunes chunking (CoNLL-2000) at length 256; other tagging at 128.
CHUNKING_MAX_SEQ_LENGTH = 256
TASKS = (
    TaskName("tagging", lambda options: _make("tagging", options),
             "word tagging (NER, ...) from CoNLL files, conlleval span F1; tags found in "
             "--train_file"),
    TaskName("chunking", lambda options: _make("chunking", options),
             "chunking (CoNLL-2000 style) from CoNLL files at length 256 as the reference, "
             "conlleval span F1; tags found in --train_file",
             max_seq_length=CHUNKING_MAX_SEQ_LENGTH),
)
