"""Corpus sources for the recipe's data preparation: text files or a TFDS text corpus.

docs/RECIPE.md "Data preparation": each non-empty line is one sentence and a blank line ends a
document (blanks_separate_docs); without blanks_separate_docs blank lines are ignored and one
file (or one TFDS example) is one document. A reader yields, in corpus order, the stripped text
of each non-blank line and `None` at the end of each document.

Real-world text rules (where this project deliberately goes beyond the reference):
- Bytes that are not valid UTF-8 are decoded as U+FFFD and counted (undecodable_bytes_so_far).
- Lines are split on "\\n" only (like the reference's file reader, unlike str.splitlines).
- Memory stays bounded on huge lines: a line longer than MAX_LINE_BYTES (1 MiB) is cut into
  pieces of at most that size, at the last space or tab of each piece (or at a character
  boundary if there is none), and each piece is treated as a sentence of its own. A whitespace-
  only piece of a long line is dropped and never counts as a blank line. (The reference would
  make one sentence of the whole line, i.e. one example, and drop the rest of it anyway.)
- Files that look binary (a NUL byte in the first 8 KiB) are skipped with a warning.

Sharding: the builder cuts the corpus into shards by position, so that each shard can be built
(and rebuilt after an interruption) independently and the partition does not depend on the number
of processes. For files, the corpus is the concatenation of the files in order; a document belongs
to the shard whose byte range contains the separator in front of it (the start of its file or the
blank line before it), so a worker can seek straight to its range. For TFDS, shards are ranges of
example indices.
"""

# First, also in worker processes (spawned or Beam's), which import this module before anything
# else of ours: TensorFlow imported with its C++ start-up notices filtered (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
import codecs
import dataclasses
import glob
import io as stdlib_io
import os
from collections.abc import Iterator
from typing import BinaryIO

import tensorflow as tf
from absl import logging

from electra_tf import io
from electra_tf.io import first_line

MAX_LINE_BYTES = 1 << 20
CHUNK_BYTES = 1 << 20
MIN_CHUNK_BYTES = 1 << 14
BINARY_SNIFF_BYTES = 8192
TFDS_GUESSED_EXAMPLE_BYTES = 2048
_ERROR_HANDLER = "electra_tf_count_replace"
_undecodable = [0]  # bytes replaced by U+FFFD in this process, across all readers


def _count_and_replace(error: UnicodeDecodeError):
    _undecodable[0] += error.end - error.start
    return "\ufffd", error.end


codecs.register_error(_ERROR_HANDLER, _count_and_replace)


def decode(raw: bytes) -> str:
    """UTF-8 with undecodable bytes replaced by U+FFFD and counted."""
    return raw.decode("utf-8", errors=_ERROR_HANDLER)


def undecodable_bytes_so_far() -> int:
    return _undecodable[0]


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    path: str
    size: int
    offset: int  # where the file starts in the concatenated corpus


@dataclasses.dataclass(frozen=True)
class Range:
    """A shard's part of the corpus: bytes [start, stop) of the files or examples [start, stop)."""

    start: int
    stop: int


def _line_blocks(f: BinaryIO, stop: int | None = None
                 ) -> Iterator[tuple[int, list[str], list[int], bool]]:
    """The lines from f's position on, a block at a time: (offset of the block's first line,
    the lines decoded and stripped, each line's length in bytes with its newline, whole).

    Reading and decoding a chunk at a time keeps the per-line Python work small; chunks shrink
    near `stop`, where the reader is expected to stop. A line longer than MAX_LINE_BYTES comes
    as one-line blocks of its pieces, with whole=False.
    """
    offset = read_position = f.tell()
    tail = b""  # the unfinished last line
    tail_is_cut = False  # the unfinished line already gave a piece
    while True:
        size = CHUNK_BYTES if stop is None else min(
            CHUNK_BYTES, max(MIN_CHUNK_BYTES, stop - read_position))
        chunk = f.read(size)
        if not chunk:
            break
        read_position += len(chunk)
        data = tail + chunk
        end = data.rfind(b"\n") + 1
        tail = data[end:]
        if end:
            start = 0
            if tail_is_cut:  # the rest of a long line
                start = data.index(b"\n") + 1
                yield offset, [decode(data[:start - 1]).strip()], [start], False
                offset += start
                tail_is_cut = False
            if end > start:
                lengths = [len(raw) + 1 for raw in data[start:end - 1].split(b"\n")]
                texts = decode(data[start:end - 1]).split("\n")
                yield offset, [text.strip() for text in texts], lengths, True
                offset += end - start
        while len(tail) > MAX_LINE_BYTES:
            piece = tail[:MAX_LINE_BYTES]
            cut = max(piece.rfind(b" "), piece.rfind(b"\t")) + 1 or _utf8_boundary(piece)
            yield offset, [decode(piece[:cut]).strip()], [cut], False
            offset += cut
            tail = tail[cut:]
            tail_is_cut = True
    if tail:  # a last line without a newline
        yield offset, [decode(tail).strip()], [len(tail)], not tail_is_cut


def _utf8_boundary(raw: bytes) -> int:
    """The largest cut position that does not split a UTF-8 sequence at the end of raw."""
    lead = len(raw) - 1
    while lead > len(raw) - 4 and 0x80 <= raw[lead] < 0xC0:
        lead -= 1
    first = raw[lead]
    needed = 1 if first < 0xC0 else 2 if first < 0xE0 else 3 if first < 0xF0 else 4
    return lead if lead + needed > len(raw) and lead > 0 else len(raw)


def _skip_to_line_start(f: BinaryIO, position: int) -> None:
    """Seeks to the first line start at or after `position` (position > 0), or to the end."""
    f.seek(position - 1)
    while True:
        start = f.tell()
        chunk = f.read(MIN_CHUNK_BYTES)
        newline = chunk.find(b"\n")
        if newline >= 0:
            f.seek(start + newline + 1)
            return
        if not chunk:
            return


class FileCorpus:
    """Text files read in order as one corpus."""

    def __init__(self, paths: list[str], blanks_separate_docs: bool):
        self.blanks_separate_docs = blanks_separate_docs
        self.skipped_binary: list[str] = []
        files, offset = [], 0
        for path in paths:
            size = tf.io.gfile.stat(path).length
            if _looks_binary(path):
                logging.warning("skipping %s: it looks like a binary file (NUL bytes)", path)
                self.skipped_binary.append(path)
                continue
            files.append(CorpusFile(path, size, offset))
            offset += size
        if not files:
            raise cli.UserError(f"no text files in the corpus (binary files skipped: "
                                f"{', '.join(self.skipped_binary)})")
        self.files = files
        self.total_size = offset
        if self.total_size == 0:
            raise cli.UserError(f"the corpus is empty: {', '.join(paths[:3])}"
                                f"{' ...' if len(paths) > 3 else ''} hold no bytes")

    def describe(self) -> dict:
        return {"files": [f"{f.path} ({f.size} bytes)" for f in self.files],
                "skipped_binary_files": self.skipped_binary}

    def fingerprint(self) -> list:
        return [[f.path, f.size, tf.io.gfile.stat(f.path).mtime_nsec] for f in self.files]

    def ranges(self, start: int, stop: int, count: int) -> list[Range]:
        """`count` contiguous byte ranges of about equal size covering [start, stop)."""
        bounds = [start + (stop - start) * i // count for i in range(count + 1)]
        return [Range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def read(self, shard: Range, progress: list | None = None) -> Iterator[str | None]:
        """The shard's documents as stripped lines and None at each document's end.

        `progress[0]` (when given) is kept at the number of corpus bytes read so far.
        """
        for corpus_file in self.files:
            if corpus_file.offset >= shard.stop:
                return
            if corpus_file.offset + corpus_file.size <= shard.start:
                continue
            if not self.blanks_separate_docs and corpus_file.offset < shard.start:
                continue  # the whole file is one document and belongs to an earlier shard
            finished = yield from self._read_file(corpus_file, shard, progress)
            if finished:
                return

    def _read_file(self, corpus_file: CorpusFile, shard: Range, progress):
        local_start = shard.start - corpus_file.offset
        local_stop = shard.stop - corpus_file.offset
        blanks_separate_docs = self.blanks_separate_docs
        in_document = False
        with tf.io.gfile.GFile(corpus_file.path, "rb") as f:
            # A document is ours when the separator before it (file start or a blank line)
            # lies in our range; lines before our first separator belong to an earlier shard.
            armed = local_start <= 0
            if not armed:
                _skip_to_line_start(f, local_start)
            for offset, texts, lengths, whole in _line_blocks(f, local_stop):
                block_end = offset + sum(lengths)
                if progress is not None:
                    progress[0] = corpus_file.offset + block_end - shard.start
                if not whole:  # a piece of a long line: never a blank line
                    if texts[0] and armed:
                        in_document = True
                        yield texts[0]
                    continue
                position = offset
                for text, length in zip(texts, lengths):
                    if text:
                        if armed:
                            in_document = True
                            yield text
                    elif blanks_separate_docs:
                        if position >= local_stop:
                            if in_document:
                                yield None
                            return True
                        if in_document:
                            yield None
                            in_document = False
                        armed = True
                    position += length
        if in_document:
            yield None
        return False


def _looks_binary(path: str) -> bool:
    with tf.io.gfile.GFile(path, "rb") as f:
        return b"\x00" in f.read(BINARY_SNIFF_BYTES)


def resolve_files(corpus_dir: str | None, corpus_files: list[str]) -> list[str]:
    """The corpus files named by --corpus_dir (its regular, non-hidden files, not recursive,
    sorted) or --corpus_files (globs, each matched file sorted, in the order of the globs)."""
    paths: list[str] = []
    if corpus_dir:
        # isdir answers False where the filesystem refuses (no credentials, no such bucket)
        io.checked(tf.io.gfile.exists, corpus_dir, "--corpus_dir")
        if not tf.io.gfile.isdir(corpus_dir):
            raise cli.UserError(f"--corpus_dir={corpus_dir}: no such directory")
        names = sorted(n.rstrip("/") for n in io.checked(tf.io.gfile.listdir, corpus_dir,
                                                      "--corpus_dir"))
        paths = [p for p in (io.join(corpus_dir, n) for n in names if not n.startswith("."))
                 if not tf.io.gfile.isdir(p)]
        if not paths:
            raise cli.UserError(f"--corpus_dir={corpus_dir}: the directory holds no files")
    for pattern in corpus_files:
        if "://" not in pattern:
            pattern = os.path.expanduser(pattern)
        # Python's glob for local paths (it knows "**"); any other filesystem through gfile.
        found = (io.checked(tf.io.gfile.glob, pattern, "--corpus_files") if "://" in pattern
                 else glob.glob(pattern, recursive=True))
        matches = sorted(p for p in found if not tf.io.gfile.isdir(p))
        if not matches:
            raise cli.UserError(f"--corpus_files: {pattern!r} matches no file")
        paths.extend(matches)
    seen = set()
    return [p for p in paths if not (p in seen or seen.add(p))]


class TfdsCorpus:
    """A TFDS text corpus: each example's text (lines split on "\\n") ends with a document end.

    Shards are ranges of example indices, read with TFDS split slicing ("train[a:b]").
    """

    def __init__(self, name: str, split: str, text_key: str, blanks_separate_docs: bool):
        import tensorflow_datasets as tfds

        self.name, self.split, self.text_key = name, split, text_key
        self.blanks_separate_docs = blanks_separate_docs
        try:
            builder = tfds.builder(name)
        except Exception as e:  # tfds raises several types for unknown or broken names
            raise cli.UserError(f"--tfds_name={name}: {first_line(e)}") from None
        if text_key not in builder.info.features:
            raise cli.UserError(f"--tfds_text_key={text_key}: {name} has no such feature "
                                f"(it has {', '.join(builder.info.features)})")
        try:
            builder.download_and_prepare()
            dataset = builder.as_dataset(split=split, shuffle_files=False)
        except Exception as e:
            raise cli.UserError(f"--tfds_split={split} of --tfds_name={name}: "
                                f"{first_line(e)}") from None
        self.num_examples = int(dataset.cardinality())
        if self.num_examples < 0:
            raise cli.UserError(f"--tfds_split={split}: {name} does not know its size")
        if self.num_examples == 0:
            raise cli.UserError(f"--tfds_split={split}: {name}[{split}] is empty")
        self.total_size = self.num_examples
        split_info = builder.info.splits[split] if split in builder.info.splits else None
        # Only to choose the default number of shards; a guess when TFDS does not say.
        self.estimated_bytes = ((split_info.num_bytes if split_info else 0) or
                                self.num_examples * TFDS_GUESSED_EXAMPLE_BYTES)

    def describe(self) -> dict:
        return {"tfds": f"{self.name}[{self.split}].{self.text_key}",
                "examples": self.num_examples}

    def fingerprint(self) -> list:
        return [self.name, self.split, self.text_key, self.num_examples]

    def ranges(self, start: int, stop: int, count: int) -> list[Range]:
        bounds = [start + (stop - start) * i // count for i in range(count + 1)]
        return [Range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def read(self, shard: Range, progress: list | None = None) -> Iterator[str | None]:
        import tensorflow_datasets as tfds

        if shard.stop <= shard.start:
            return
        dataset = tfds.load(self.name, split=f"{self.split}[{shard.start}:{shard.stop}]",
                            shuffle_files=False)
        for i, example in enumerate(dataset.as_numpy_iterator()):
            text = example[self.text_key]
            if isinstance(text, str):
                text = text.encode("utf-8")
            in_document = False
            for _, texts, _, whole in _line_blocks(stdlib_io.BytesIO(text)):
                for line in texts:
                    if line:
                        in_document = True
                        yield line
                    elif whole and self.blanks_separate_docs and in_document:
                        in_document = False
                        yield None
            if in_document:
                yield None
            if progress is not None:
                progress[0] = i + 1
