"""Text to model inputs for fine-tuning, exactly as the recipe's data stage and the export do it.

Sentence tasks: WordPieces from the shared `electra_tf.tokenization.Tokenizer`, laid out by
`pack_segments` as [CLS] A [SEP] (B [SEP]) with the longer segment truncated first, so training,
evaluation and the exported raw-text signature cannot drift apart. Tagging: each word is
tokenized on its own (the basic tokenizer splits on whitespace, so the pieces are the same as in
context) and its label sits on its first WordPiece; words past max_seq_length are cut off and
marked with position -1 and predicted as `cut_off_tag`.
"""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from electra_tf import tokenization
from electra_tf.cli import Progress

# Texts tokenized per call: large enough to amortize graph overhead, small enough for memory.
BATCH = 2048


def encode_texts(tokenizer, texts_a: Sequence[str], texts_b: Sequence[str] | None,
                 max_seq_length: int) -> dict:
    """{"input_ids", "input_mask", "segment_ids"}: int32 numpy arrays [N, max_seq_length]."""
    parts = []
    progress = Progress(len(texts_a), "examples tokenized")
    for start in range(0, len(texts_a), BATCH):
        if start:
            progress.update(start)
        ids_a = tokenizer.tokenize(tf.constant(list(texts_a[start:start + BATCH])))
        ids_b = (tokenizer.tokenize(tf.constant(list(texts_b[start:start + BATCH])))
                 if texts_b is not None else None)
        packed = tokenization.pack_segments(ids_a, ids_b, max_seq_length,
                                            tokenizer.cls_id, tokenizer.sep_id)
        parts.append({k: np.asarray(v, dtype=np.int32) for k, v in packed.items()})
    if not parts:
        empty = np.zeros((0, max_seq_length), dtype=np.int32)
        return {"input_ids": empty, "input_mask": empty.copy(), "segment_ids": empty.copy()}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def encode_words(tokenizer, sentences: Sequence[Sequence[str]],
                 label_ids: Sequence[Sequence[int] | None],
                 max_seq_length: int) -> tuple[dict, list]:
    """Model inputs for word sequences, labels on each word's first WordPiece.

    Returns the arrays (input_ids, input_mask, segment_ids, label_ids int32 and label_mask
    float32, all [N, max_seq_length]) and per sentence the position of each word's first
    WordPiece (-1 for words cut off by max_seq_length). `label_ids[i]` None: unlabelled.
    """
    flat = [word for words in sentences for word in words]
    pieces = []
    progress = Progress(len(flat), "words tokenized")
    for start in range(0, len(flat), BATCH):
        if start:
            progress.update(start)
        pieces.extend(tokenizer.ids(flat[start:start + BATCH]))
    shape = (len(sentences), max_seq_length)
    arrays = {"input_ids": np.zeros(shape, np.int32), "input_mask": np.zeros(shape, np.int32),
              "segment_ids": np.zeros(shape, np.int32), "label_ids": np.zeros(shape, np.int32),
              "label_mask": np.zeros(shape, np.float32)}
    all_positions = []
    cursor = 0
    for row, words in enumerate(sentences):
        ids = [tokenizer.cls_id]
        positions = []
        full = False
        for k in range(len(words)):
            # A word without pieces (only characters the cleaner drops) still needs a slot.
            word_pieces = pieces[cursor + k] or [tokenizer.unk_id]
            full = full or len(ids) + len(word_pieces) > max_seq_length - 1
            if full:
                positions.append(-1)
                continue
            positions.append(len(ids))
            ids.extend(word_pieces)
        cursor += len(words)
        ids.append(tokenizer.sep_id)
        arrays["input_ids"][row, :len(ids)] = ids
        arrays["input_mask"][row, :len(ids)] = 1
        if label_ids[row] is not None:
            for position, label in zip(positions, label_ids[row]):
                if position >= 0:
                    arrays["label_ids"][row, position] = label
                    arrays["label_mask"][row, position] = 1.0
        all_positions.append(positions)
    return arrays, all_positions


def cut_off_tag(labels: Sequence[str]) -> str:
    """The tag of a word past max_seq_length (fine-tuning predictions and the served tagger):
    "O" when the task has it, else its first label."""
    return "O" if "O" in labels else labels[0]
