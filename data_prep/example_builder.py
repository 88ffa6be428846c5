"""The recipe's ExampleBuilder: packs tokenized sentences into fixed-length pre-training examples.

Implements docs/RECIPE.md "Data preparation", packing and layout, decision for decision and random
draw for random draw as the reference ExampleBuilder, so that given the same random.Random state
it produces the same examples:

- sentences (the non-empty lines of a document) accumulate until their total length reaches the
  current target length, or the document ends; then they become one example;
- with probability 0.1 the example has a single segment, otherwise segment A aims at
  (target - 3) // 2 tokens; a sentence joins A while A is empty, while it fits under A's target,
  or (half of the time) while B is still empty and A is under its target; else it joins B;
- A is truncated to max_len - 2 tokens and B to max_len - len(A) - 3; the rest is dropped;
- the next target is max_len, or with probability 0.05 randint(5, max_len);
- layout [CLS] A [SEP] (segment 0) B [SEP] (segment 1), zero padding to max_len.

Sentences whose tokenization is empty change nothing in the reference (they never draw a random
number and never change a segment length), so they are skipped here.

Unlike the reference, which builds one tf.train.Example per example in Python, the examples come
out serialized, with exactly the bytes of `tf.train.Example.SerializeToString(deterministic=True)`:
each batch of sentences is varint-encoded once, and an example's record is joined from the byte
ranges of its sentences and headers that depend only on lengths.
"""

import dataclasses
import functools
import random

import numpy as np

SINGLE_SEGMENT_PROB = 0.1
RANDOM_TARGET_PROB = 0.05
MIN_RANDOM_TARGET = 5
SINGLE_SEGMENT_TARGET = 100_000  # the reference's "no limit" for segment A; kept for parity


@dataclasses.dataclass
class Examples:
    """A batch of packed examples: their serialized tf.train.Example records and layout."""

    records: list  # bytes of each tf.train.Example
    lengths: np.ndarray  # int32 [n]: tokens before the padding, [CLS] and [SEP]s included
    segment_b_start: np.ndarray  # int32 [n]: first position of segment 1 (== length if none)

    def __len__(self) -> int:
        return len(self.lengths)


class _Batch:
    """A batch of sentences' token ids, varint-encoded once: `data[offsets[i]:offsets[j]]` are
    the bytes of tokens i to j - 1."""

    def __init__(self, flat_ids: np.ndarray):
        self.data, self.offsets = _varints(flat_ids)


class ExampleBuilder:
    """Stateful packer for one shard; its random.Random is the only source of randomness."""

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int, rng: random.Random):
        if max_seq_length < MIN_RANDOM_TARGET:
            raise ValueError(f"max_seq_length must be at least {MIN_RANDOM_TARGET}")
        self.max_seq_length = max_seq_length
        self.rng = rng
        self._cls = _varint(cls_id)
        self._sep = _varint(sep_id)
        self._serializer = _serializer(max_seq_length)
        self._target_length = max_seq_length
        self._sentences: list[tuple[_Batch, int, int]] = []  # (batch, first token, length)
        self._length = 0
        self._records: list[bytes] = []
        self._lengths: list[int] = []
        self._b_starts: list[int] = []

    def add_sentences(self, flat_ids: np.ndarray, row_splits: np.ndarray,
                      document_ends: list[bool]) -> None:
        """Adds tokenized sentences (a ragged batch) in corpus order.

        `flat_ids[row_splits[i]:row_splits[i + 1]]` are sentence i's token ids; a document ends
        after sentence i when `document_ends[i]`. Documents may continue across calls.
        """
        batch = _Batch(flat_ids)
        splits = row_splits.tolist()
        for i, end_of_document in enumerate(document_ends):
            start, stop = splits[i], splits[i + 1]
            if stop > start:
                self._sentences.append((batch, start, stop - start))
                self._length += stop - start
                if self._length >= self._target_length:
                    self._create_example()
            if end_of_document and self._length:
                self._create_example()

    def end_document(self) -> None:
        if self._length:
            self._create_example()

    def take_examples(self) -> Examples:
        """Returns (and forgets) the examples completed so far."""
        examples = Examples(self._records, np.array(self._lengths, dtype=np.int32),
                            np.array(self._b_starts, dtype=np.int32))
        self._records, self._lengths, self._b_starts = [], [], []
        return examples

    def _create_example(self) -> None:
        rng = self.rng
        max_len = self.max_seq_length
        if rng.random() < SINGLE_SEGMENT_PROB:
            first_target = SINGLE_SEGMENT_TARGET
        else:
            first_target = (self._target_length - 3) // 2

        first, second = [], []
        first_length = second_length = 0
        for sentence in self._sentences:
            n = sentence[2]
            if (first_length == 0 or first_length + n < first_target or
                    (second_length == 0 and first_length < first_target and
                     rng.random() < 0.5)):
                first.append(sentence)
                first_length += n
            else:
                second.append(sentence)
                second_length += n

        first_length = min(first_length, max_len - 2)
        second_length = min(second_length, max(0, max_len - first_length - 3))
        # [CLS] A [SEP] (B [SEP]), each segment cut to its length, then zero padding
        pieces = [self._cls]
        _take(first, first_length, pieces)
        pieces.append(self._sep)
        length = b_start = first_length + 2
        if second_length:
            _take(second, second_length, pieces)
            pieces.append(self._sep)
            length += second_length + 1
        pieces.append(_zeros(max_len - length))
        self._records.append(self._serializer.record(b"".join(pieces), length, b_start))
        self._lengths.append(length)
        self._b_starts.append(b_start)

        self._sentences = []
        self._length = 0
        if rng.random() < RANDOM_TARGET_PROB:
            self._target_length = rng.randint(MIN_RANDOM_TARGET, max_len)
        else:
            self._target_length = max_len


def _take(sentences: list, budget: int, pieces: list) -> None:
    """Appends the bytes of the sentences' first `budget` tokens to `pieces`."""
    for batch, start, n in sentences:
        n = min(n, budget)
        if n <= 0:
            return
        offsets = batch.offsets
        pieces.append(batch.data[offsets[start]:offsets[start + n]])
        budget -= n


@functools.lru_cache(maxsize=1024)
def _zeros(count: int) -> bytes:
    return bytes(count)


@functools.lru_cache(maxsize=4096)
def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varints(ids: np.ndarray) -> tuple[bytes, list[int]]:
    """Protobuf varint encoding of token ids in [0, 2**28): the bytes of all of them, one after
    the other, and where each id's bytes start (with the end last)."""
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 28):
        raise ValueError("token ids must be in [0, 2**28)")
    x = ids.astype(np.int32).ravel()
    n_bytes = (1 + (x >= 1 << 7).view(np.int8) + (x >= 1 << 14).view(np.int8) +
               (x >= 1 << 21).view(np.int8))
    groups = np.empty((x.size, 4), dtype=np.uint8)  # little-endian 7-bit groups
    for k in range(4):
        groups[:, k] = ((x >> (7 * k)) & 0x7F) | ((n_bytes > k + 1) << 7)
    keep = np.arange(4, dtype=np.int8)[None, :] < n_bytes[:, None]
    offsets = np.zeros(x.size + 1, dtype=np.int64)
    np.cumsum(n_bytes, out=offsets[1:])
    return groups[keep].tobytes(), offsets.tolist()


def _feature_entry_prefix(name: str, payload_length: int) -> bytes:
    """Bytes of a Features.feature map entry up to its packed int64 values.

    Entry = key (field 1) + Feature (field 2) holding int64_list (field 3) holding the packed
    repeated `value` (field 1).
    """
    key = bytes((0x0A,)) + _varint(len(name)) + name.encode()
    int64_list_length = 1 + len(_varint(payload_length)) + payload_length
    feature_length = 1 + len(_varint(int64_list_length)) + int64_list_length
    entry_length = len(key) + 1 + len(_varint(feature_length)) + feature_length
    return (bytes((0x0A,)) + _varint(entry_length) + key + bytes((0x12,)) +
            _varint(feature_length) + bytes((0x1A,)) + _varint(int64_list_length) +
            bytes((0x0A,)) + _varint(payload_length))


class _ExampleSerializer:
    """Caches every header that depends only on lengths, so each record is one bytes join."""

    def __init__(self, max_seq_length: int):
        self.max_seq_length = max_seq_length
        self._mask_prefix = _feature_entry_prefix("input_mask", max_seq_length)
        self._segment_prefix = _feature_entry_prefix("segment_ids", max_seq_length)
        self._fixed_length = (len(self._mask_prefix) + len(self._segment_prefix) +
                              2 * max_seq_length)
        self._heads: dict[int, bytes] = {}
        self._segments: dict[tuple[int, int], bytes] = {}

    def head(self, ids_length: int) -> bytes:
        """Example + Features header and the input_ids entry prefix, for packed ids of a length."""
        head = self._heads.get(ids_length)
        if head is None:
            ids_prefix = _feature_entry_prefix("input_ids", ids_length)
            features_length = len(ids_prefix) + ids_length + self._fixed_length
            head = bytes((0x0A,)) + _varint(features_length) + ids_prefix
            self._heads[ids_length] = head
        return head

    def record(self, ids: bytes, length: int, b_start: int) -> bytes:
        """The Example of the packed (varint) input_ids and the example's layout."""
        return b"".join((self.head(len(ids)), ids, self.mask_and_segments(length, b_start)))

    def mask_and_segments(self, length: int, b_start: int) -> bytes:
        tail = self._segments.get((length, b_start))
        if tail is None:
            pad = self.max_seq_length - length
            tail = (self._mask_prefix + b"\x01" * length + b"\x00" * pad + self._segment_prefix +
                    b"\x00" * b_start + b"\x01" * (length - b_start) + b"\x00" * pad)
            self._segments[(length, b_start)] = tail
        return tail


@functools.lru_cache(maxsize=16)
def _serializer(max_seq_length: int) -> _ExampleSerializer:
    return _ExampleSerializer(max_seq_length)
