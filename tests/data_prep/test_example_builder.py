"""Packing (docs/RECIPE.md ExampleBuilder): statistics on streams where the algorithm's outcome is
known, layout and truncation, and byte equality with the plain-Python reference packer."""

import math
import random

import numpy as np
import pytest
import tensorflow as tf

from bench.reference.example_builder import ReferenceExampleBuilder, to_tf_example
from data_prep.example_builder import ExampleBuilder, Examples

CLS, SEP = 2, 3


def pack(sentence_lengths, document_ends, max_len=128, seed=0, vocab=1000, batches=1):
    """Packs sentences of the given lengths (random ids >= 5) with ExampleBuilder, handing
    them over in `batches` calls cut at random sentences, as the builder does per block (a
    document that ends at a cut ends either in the batch or by end_document after it)."""
    rng = np.random.default_rng(seed)
    splits = np.concatenate([[0], np.cumsum(sentence_lengths)]).astype(np.int64)
    flat = rng.integers(5, vocab, size=int(splits[-1])).astype(np.int32)
    builder = ExampleBuilder(max_len, CLS, SEP, random.Random(seed))
    n = len(sentence_lengths)
    cuts = [0] + sorted(rng.choice(np.arange(1, n), size=batches - 1, replace=False)) + [n]
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        ends = list(document_ends[a:b])
        late_end = ends[-1] and rng.random() < 0.5
        ends[-1] = ends[-1] and not late_end
        builder.add_sentences(flat[splits[a]:splits[b]], splits[a:b + 1] - splits[a], ends)
        if late_end:
            builder.end_document()
        if rng.random() < 0.5:  # taken now or with a later batch's examples
            parts.append(builder.take_examples())
    builder.end_document()
    parts.append(builder.take_examples())
    return Examples(sum((p.records for p in parts), []),
                    *(np.concatenate([getattr(p, k) for p in parts])
                      for k in ("lengths", "segment_b_start"))), flat


def parsed(examples, max_len):
    """The records parsed back by TensorFlow: input_ids, input_mask, segment_ids [n, max_len]."""
    spec = {k: tf.io.FixedLenFeature([max_len], tf.int64)
            for k in ("input_ids", "input_mask", "segment_ids")}
    rows = tf.io.parse_example(tf.constant(examples.records, tf.string), spec)
    return {k: v.numpy() for k, v in rows.items()}


def within(observed_count, n, p, sigmas=5.0):
    sd = math.sqrt(n * p * (1 - p))
    return abs(observed_count - n * p) <= sigmas * sd


def test_single_segment_fraction_is_the_designed_ten_percent_on_one_token_sentences():
    # With one-token sentences segment B can only stay empty when the 10% draw said so.
    n_sentences = 1_500_000
    examples, _ = pack([1] * n_sentences, [False] * n_sentences)
    n = len(examples)
    single = int(np.count_nonzero(examples.segment_b_start == examples.lengths))
    assert n > 10_000
    assert within(single, n, 0.1), single / n


def test_full_length_fraction_follows_the_random_target_rule():
    # Each example holds exactly its target's worth of one-token sentences; it is full length
    # unless the 5% rule drew a target randint(5, 128) too short to fill it (< 125 or 126).
    n_sentences = 1_500_000
    examples, _ = pack([1] * n_sentences, [False] * n_sentences)
    n = len(examples)
    full = int(np.count_nonzero(examples.lengths == 128))
    p_full = 0.95 + 0.05 * 3.5 / 124  # targets 125..128 fill it (126..128 when single)
    assert within(full, n, p_full), full / n
    short = examples.lengths[examples.lengths < 125]
    # random targets are uniform over [5, 128]: the short ones spread over the whole range
    assert short.min() <= 10 and len(np.unique(short)) > 100


def test_segment_a_takes_the_overflowing_sentence_half_of_the_time():
    # Ten-token sentences, target 128: A holds 60 tokens, then the seventh sentence goes to A
    # with probability 0.5 (while B is empty) -> A is 60 or 70 tokens in two-segment examples.
    # (A random target of 121-124 also fills the example, with A = 50 or 60: rare.)
    n_sentences = 200_000
    examples, _ = pack([10] * n_sentences, [False] * n_sentences)
    two = (examples.segment_b_start < examples.lengths) & (examples.lengths == 128)
    a_lengths = examples.segment_b_start[two] - 2
    assert set(np.unique(a_lengths)) <= {50, 60, 70}
    assert np.count_nonzero(a_lengths == 50) < 0.01 * len(a_lengths)
    common = a_lengths[a_lengths != 50]
    assert within(int(np.count_nonzero(common == 70)), len(common), 0.5)


def test_layout_truncation_and_padding():
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 300, size=5000)
    ends = rng.random(5000) < 0.2
    examples, _ = pack(lengths, ends, max_len=64, seed=1)
    rows = parsed(examples, 64)
    ids, mask, segments = rows["input_ids"], rows["input_mask"], rows["segment_ids"]
    for i in range(len(examples)):
        length, b_start = int(examples.lengths[i]), int(examples.segment_b_start[i])
        assert 3 <= length <= 64 and 2 <= b_start <= length
        assert ids[i, 0] == CLS and ids[i, b_start - 1] == SEP
        assert (ids[i, 1:b_start - 1] >= 5).all()  # A holds only corpus tokens
        if b_start < length:  # B present: [SEP] last, B's tokens in between
            assert ids[i, length - 1] == SEP and (ids[i, b_start:length - 1] >= 5).all()
            assert length - b_start - 1 >= 1
        assert (ids[i, length:] == 0).all() and (mask[i, length:] == 0).all()
        assert (mask[i, :length] == 1).all()
        assert (segments[i, :b_start] == 0).all() and (segments[i, b_start:length] == 1).all()
        assert (segments[i, length:] == 0).all()
    # sentences longer than the example were truncated to exactly max_len
    assert np.count_nonzero(examples.lengths == 64) > len(examples) // 2


def test_truncation_keeps_the_heads_of_the_segments():
    # One document: a 50-token sentence then a 200-token one. Either both go to A (truncated
    # to 62 tokens, single segment) or A = 50 and B = the first 64 - 50 - 3 = 11 of the second.
    seen = set()
    for seed in range(40):
        examples, flat = pack([50, 200], [False, True], max_len=64, seed=seed)
        assert len(examples) == 1
        ids, length, b_start = parsed(examples, 64)["input_ids"][0], examples.lengths[0], \
            examples.segment_b_start[0]
        if b_start == length:
            assert length == 64 and (ids[1:63] == flat[:62]).all()
            seen.add("A")
        else:
            assert b_start == 52 and length == 64
            assert (ids[1:51] == flat[:50]).all() and (ids[52:63] == flat[50:61]).all()
            seen.add("AB")
    assert seen == {"A", "AB"}


def test_a_document_end_makes_a_short_padded_example():
    examples, flat = pack([7], [True], max_len=16)
    assert examples.lengths.tolist() == [9]
    rows = parsed(examples, 16)
    assert rows["input_ids"][0].tolist() == [CLS] + flat.tolist() + [SEP] + [0] * 7
    assert rows["input_mask"][0].tolist() == [1] * 9 + [0] * 7


@pytest.mark.parametrize("max_len,seed,batches", [(5, 0, 1), (16, 1, 1), (128, 2, 1),
                                                   (128, 3, 1), (16, 4, 40), (128, 5, 300)])
def test_same_bytes_as_the_reference_packer(max_len, seed, batches):
    rng = np.random.default_rng(seed)
    n = 3000
    # sentence lengths including empty ones (lines that tokenize to nothing) and long ones
    lengths = rng.choice([0, 1, 3, 8, 20, 40, 90, 300], size=n,
                         p=[.05, .05, .1, .3, .3, .1, .05, .05])
    ends = rng.random(n) < 0.15
    examples, flat = pack(lengths, ends, max_len=max_len, seed=seed, batches=batches)
    ours = examples.records

    starts = np.concatenate([[0], np.cumsum(lengths)])
    sentences = iter([flat[a:b].tolist() for a, b in zip(starts[:-1], starts[1:])])
    reference = ReferenceExampleBuilder(lambda line: next(sentences) if line else [], max_len,
                                        CLS, SEP, random.Random(seed))
    expected = []
    for end in ends:
        for line in ["sentence"] + ([""] if end else []):
            example = reference.add_line(line)
            if example:
                expected.append(to_tf_example(example))
    example = reference.add_line("")
    if example:
        expected.append(to_tf_example(example))
    assert len(ours) == len(expected) > 0
    assert ours == expected


def test_serialized_examples_parse_back_including_large_ids():
    ids = [127, 128, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1]  # 1 to 4 varint bytes
    builder = ExampleBuilder(10, CLS, SEP, random.Random(0))
    builder.add_sentences(np.array(ids, np.int32), np.array([0, 7]), [True])
    examples = builder.take_examples()
    assert len(examples) == 1  # one sentence: segment A alone, whatever the draws
    expected = {"input_ids": [CLS] + ids + [SEP, 0], "input_mask": [1] * 9 + [0],
                "segment_ids": [0] * 10}
    assert {k: v[0].tolist() for k, v in parsed(examples, 10).items()} == expected
    assert examples.records[0] == to_tf_example(expected)
    with pytest.raises(ValueError, match="token ids"):
        builder.add_sentences(np.array([2 ** 28], np.int32), np.array([0, 1]), [True])
