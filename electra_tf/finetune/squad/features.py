"""Sliding-window features for the recipe's extractive QA (SQuAD), shared by training and serving.

A context is split into words with the BERT basic tokenizer's rules (whitespace splits; each
punctuation character and CJK ideograph is a word of its own), keeping every word's character
offsets in the original text; each word then goes through the project's WordPiece tokenizer, so
the pieces are those the data stage would make. A piece inherits character offsets inside its
word when its text lines up with the word's characters (the usual case: lower-casing and accent
stripping keep one character per character); otherwise (an [UNK], a decomposed accent) every
piece of the word spans the whole word. Answers are therefore always exact substrings of the
original context.

The question (truncated to --max_query_length pieces) and a window of the context are packed as
[CLS] question [SEP] context-window [SEP]. Windows start every min(--doc_stride, room) pieces
until the context's end fits, as in the reference; a context piece seen by several windows is
scored only in the window where it has the most context on both sides ("max context").

Everything here is in-graph (TF ops), so the exported SavedModel runs the very same code as
fine-tuning; fine-tuning runs it eagerly over batches of examples.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import tokenization
from electra_tf.cli import UserError


def _split_patterns() -> tuple[str, str]:
    """(split, keep) RE2 patterns of the basic tokenizer's word boundaries.

    Taken from the tokenizer's own character tables, so a word here is a word there: whitespace
    separates words; punctuation and CJK ideographs are words of their own. Characters the
    tokenizer drops stay inside their word (its pieces then span the whole word).
    """
    tables = tokenization.unicode_tables()
    # The tokenizer's whitespace class leaves out the plain space it normalizes to.
    return " |" + tables["whitespace"] + "|" + tables["split"], tables["split"]


# Max-context scores are packed into one integer: context on the poorer side, then window
# length (the reference's 0.01 * length tie-break), then earlier window first.
_LENGTH_SLOTS = 1024
_WINDOW_SLOTS = 1 << 20


@dataclasses.dataclass(frozen=True)
class WindowConfig:
    max_seq_length: int = 512
    doc_stride: int = 128
    max_query_length: int = 64

    def validate(self) -> None:
        if self.doc_stride < 1:
            raise UserError(f"--doc_stride={self.doc_stride}: must be at least 1")
        if self.max_query_length < 1:
            raise UserError(f"--max_query_length={self.max_query_length}: must be at least 1")
        if self.max_seq_length > _LENGTH_SLOTS:
            raise UserError(f"--max_seq_length={self.max_seq_length}: at most {_LENGTH_SLOTS} "
                            "for question answering")
        if self.max_seq_length < self.max_query_length + 4:
            raise UserError(f"--max_seq_length={self.max_seq_length} leaves no room for the "
                            f"context after a question of --max_query_length="
                            f"{self.max_query_length} pieces and 3 special tokens")


def _bytes_to_chars(texts: tf.Tensor, byte_offsets: tf.RaggedTensor) -> tf.RaggedTensor:
    """Byte offsets into UTF-8 `texts` [N] -> code point offsets (Python string indices)."""
    _, char_starts = tf.strings.unicode_decode_with_offsets(texts, "UTF-8")
    padded_starts = char_starts.to_tensor(default_value=tf.int64.max)
    chars = tf.searchsorted(padded_starts, byte_offsets.to_tensor(), side="left",
                            out_type=tf.int64)
    return tf.RaggedTensor.from_tensor(chars, lengths=byte_offsets.row_lengths())


def context_pieces(tokenizer: "tokenization.Tokenizer", contexts: tf.Tensor):
    """Contexts [N] -> (piece ids, start chars, end chars), each ragged int64 [N, (pieces)].

    Piece i of context n covers contexts[n][start[n, i]:end[n, i]] (code points).
    """
    split, keep = _split_patterns()
    # The splitter stops at NUL; U+0001 has the same byte length and is dropped by the
    # tokenizer just the same.
    words, byte_begin, byte_end = tf_text.regex_split_with_offsets(
        tf.strings.regex_replace(contexts, r"\x00", "\x01"), split, keep)
    word_start = _bytes_to_chars(contexts, byte_begin).flat_values
    word_end = _bytes_to_chars(contexts, byte_end).flat_values
    word_ids = tokenizer.tokenize(words.flat_values)  # [words, (pieces)]
    ids = tf.cast(word_ids.flat_values, tf.int64)
    text = tf.strings.regex_replace(tokenizer.id_to_token(ids), "^##", "")
    length = tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.int64)
    length_r = word_ids.with_flat_values(length)
    unknown = word_ids.with_flat_values(tf.equal(ids, tokenizer.unk_id))
    word_length = tf.reduce_sum(length_r, axis=1)
    aligned = tf.logical_and(tf.equal(word_length, word_end - word_start),
                             tf.logical_not(tf.reduce_any(unknown, axis=1)))
    # Offset of each piece inside its word: running sum of piece lengths minus the word's base.
    word_of_piece = word_ids.value_rowids()
    inside = (tf.cumsum(length, exclusive=True)
              - tf.gather(tf.cumsum(word_length, exclusive=True), word_of_piece))
    piece_aligned = tf.gather(aligned, word_of_piece)
    base = tf.gather(word_start, word_of_piece)
    start = tf.where(piece_aligned, base + inside, base)
    end = tf.where(piece_aligned, start + length, tf.gather(word_end, word_of_piece))

    def per_context(flat):
        per_word = word_ids.with_flat_values(flat)
        return tf.RaggedTensor.from_row_lengths(per_word, words.row_lengths()).merge_dims(1, 2)

    return per_context(ids), per_context(start), per_context(end)


def build_windows(question_ids: tf.RaggedTensor, context_ids: tf.RaggedTensor,
                  config: WindowConfig, cls_id: int, sep_id: int) -> dict:
    """Questions and contexts (ragged ids [N, (pieces)]) -> one row per window [W].

    Returns `input_ids`, `input_mask`, `segment_ids` (int32 [W, max_seq_length]),
    `example_index`, `window_start` (first context piece), `window_length` (context pieces),
    `context_offset` (position of the first context piece in the sequence), all int64 [W], and
    `max_context` (bool [W, max_seq_length]: context tokens scored in this window).
    """
    length = config.max_seq_length
    question = tf.cast(question_ids[:, :config.max_query_length], tf.int64)
    context_ids = tf.cast(context_ids, tf.int64)
    room = length - question.row_lengths() - 3
    context_length = context_ids.row_lengths()
    stride = tf.minimum(room, config.doc_stride)
    overflow = tf.maximum(context_length - room, 0)
    windows = 1 + (overflow + stride - 1) // stride
    example = tf.repeat(tf.range(tf.size(windows, out_type=tf.int64)), windows)
    rank = tf.ragged.range(windows).flat_values
    window_start = rank * tf.gather(stride, example)
    window_length = tf.minimum(tf.gather(context_length, example) - window_start,
                               tf.gather(room, example))
    first_piece = tf.gather(context_ids.row_starts(), example) + window_start
    piece_index = tf.ragged.range(first_piece, first_piece + window_length)
    window_context = tf.gather(context_ids.flat_values, piece_index)
    packed = tokenization.pack_segments(tf.gather(question, example), window_context, length,
                                        cls_id, sep_id)
    context_offset = tf.gather(question.row_lengths(), example) + 2

    # Max context: among the windows holding a piece, the one where the piece has the most
    # context on its poorer side wins (ties: the longer window, then the earlier one).
    position = tf.range(length, dtype=tf.int64)[None, :] - context_offset[:, None]
    in_context = tf.logical_and(position >= 0, position < window_length[:, None])
    margin = tf.minimum(position, window_length[:, None] - 1 - position)
    score = ((margin * _LENGTH_SLOTS + window_length[:, None]) * _WINDOW_SLOTS
             - rank[:, None])
    total_pieces = tf.size(context_ids.flat_values, out_type=tf.int64)
    key = tf.where(in_context, first_piece[:, None] + position, total_pieces)
    best = tf.math.unsorted_segment_max(tf.reshape(score, [-1]), tf.reshape(key, [-1]),
                                        total_pieces + 1)
    max_context = tf.logical_and(in_context, tf.equal(score, tf.gather(best, key)))
    return {
        "input_ids": tf.cast(packed["input_ids"], tf.int32),
        "input_mask": tf.cast(packed["input_mask"], tf.int32),
        "segment_ids": tf.cast(packed["segment_ids"], tf.int32),
        "example_index": example,
        "window_start": window_start,
        "window_length": window_length,
        "context_offset": context_offset,
        "max_context": max_context,
    }


def answer_pieces(starts: np.ndarray, ends: np.ndarray, char_start: int, char_end: int
                  ) -> tuple[int, int] | None:
    """The first and last context pieces overlapping characters [char_start, char_end)."""
    first = int(np.searchsorted(ends, char_start, side="right"))
    last = int(np.searchsorted(starts, char_end, side="left")) - 1
    if first >= len(starts) or last < first:
        return None
    return first, last


@dataclasses.dataclass
class SquadFeatures:
    """All windows of a list of examples, as NumPy arrays, plus what maps tokens back to text.

    `inputs`: the model inputs and window bookkeeping of `build_windows` ([W] rows);
    `piece_start` / `piece_end`: per example, the character span of each context piece;
    `start_positions` / `end_positions` / `answerable`: training targets per window (position
    0, the [CLS] token, for a window without the answer), None when built without answers.
    """

    inputs: dict
    piece_start: list
    piece_end: list
    start_positions: np.ndarray | None = None
    end_positions: np.ndarray | None = None
    answerable: np.ndarray | None = None

    @property
    def num_windows(self) -> int:
        return len(self.inputs["example_index"])

    def select(self, rows: np.ndarray) -> "SquadFeatures":
        """The windows `rows` (e.g. those with a training target)."""
        def take(array):
            return None if array is None else array[rows]
        return dataclasses.replace(
            self, inputs={k: v[rows] for k, v in self.inputs.items()},
            start_positions=take(self.start_positions), end_positions=take(self.end_positions),
            answerable=take(self.answerable))


def build_features(examples, tokenizer: "tokenization.Tokenizer", config: WindowConfig,
                   with_targets: bool, batch_size: int = 256, progress=None) -> SquadFeatures:
    """Windows of `examples` (SquadExample list), in batches; targets when `with_targets`.

    A training window whose answer lies outside it gets the [CLS] target and answerable = 0;
    an answerable example with no valid answer offset gets no targets at all (answerable = -1,
    the caller drops such windows).
    """
    config.validate()
    parts, piece_start, piece_end = [], [], []
    offset = 0
    for begin in range(0, len(examples), batch_size):
        batch = examples[begin:begin + batch_size]
        questions = tokenizer.tokenize(tf.constant([e.question for e in batch]))
        ids, starts, ends = context_pieces(tokenizer, tf.constant([e.context for e in batch]))
        windows = build_windows(questions, ids, config, tokenizer.cls_id, tokenizer.sep_id)
        windows = {k: v.numpy() for k, v in windows.items()}
        windows["example_index"] += offset
        parts.append(windows)
        piece_start.extend(starts.numpy())
        piece_end.extend(ends.numpy())
        offset += len(batch)
        if progress is not None:
            progress.update(offset)
    inputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    features = SquadFeatures(inputs, piece_start, piece_end)
    if with_targets:
        _add_targets(features, examples)
    return features


def _add_targets(features: SquadFeatures, examples) -> None:
    inputs = features.inputs
    count = features.num_windows
    start_positions = np.zeros(count, np.int32)
    end_positions = np.zeros(count, np.int32)
    answerable = np.zeros(count, np.int32)
    spans = []
    for n, example in enumerate(examples):
        answer = None if example.is_impossible else example.train_answer
        pieces = None if answer is None else answer_pieces(
            features.piece_start[n], features.piece_end[n], *answer)
        spans.append((example.is_impossible, pieces))
    for w in range(count):
        impossible, pieces = spans[inputs["example_index"][w]]
        if impossible:
            continue
        if pieces is None:
            answerable[w] = -1
            continue
        first = pieces[0] - inputs["window_start"][w]
        last = pieces[1] - inputs["window_start"][w]
        if first >= 0 and last < inputs["window_length"][w]:
            start_positions[w] = first + inputs["context_offset"][w]
            end_positions[w] = last + inputs["context_offset"][w]
            answerable[w] = 1
    features.start_positions = start_positions
    features.end_positions = end_positions
    features.answerable = answerable
