"""SQuAD windows on the real tokenizer: exact original substrings, windows that cover long
contexts, max-context scoring and training targets (decoding: test_squad_decoding.py)."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.cli import UserError
from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import reader as squad
from electra_tf.tokenization import Tokenizer
from tests.electra_tf.finetune import squad_fixtures

WINDOW = squad_features.WindowConfig(max_seq_length=32, doc_stride=8, max_query_length=12)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("squad_vocab") / "vocab.txt"
    path.write_text("\n".join(squad_fixtures.vocab()) + "\n", encoding="utf-8")
    return Tokenizer(str(path))


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    path = squad_fixtures.squad_file(tmp_path_factory.mktemp("squad") / "dev.json")
    return squad.read_squad_json(path, version=2)[0]


def test_pieces_map_back_to_exact_original_text(tokenizer):
    contexts = squad_fixtures.CONTEXTS + ["a\x00b ab\u0301c  日本\u3000x"]
    ids, starts, ends = squad_features.context_pieces(tokenizer, tf.constant(contexts))
    for context, row_ids, row_starts, row_ends in zip(contexts, ids.to_list(),
                                                      starts.to_list(), ends.to_list()):
        # Same pieces as tokenizing the whole context at once.
        assert row_ids == tokenizer.ids([context])[0]
        assert sorted(row_starts) == row_starts and all(s < e for s, e in
                                                        zip(row_starts, row_ends))
    pieces = {}
    for i, s, e in zip(ids[0].numpy(), starts[0].numpy(), ends[0].numpy()):
        pieces.setdefault(tokenizer.vocab[i], set()).add(contexts[0][s:e])
    # Accents and case come back from the original; inner WordPieces get their own characters.
    assert pieces["zurich"] == {"Zürich"}
    assert pieces["un"] == {"un"} and pieces["##aff"] == {"aff"} and pieces["##able"] == {"able"}
    last = contexts[-1]
    spans = [last[s:e] for s, e in zip(starts[-1].numpy(), ends[-1].numpy())]
    # NUL is dropped inside its word and the combining accent is not one character of the piece:
    # both words come back whole.
    assert spans[:2] == ["a\x00b", "ab\u0301c"] and spans[2:4] == ["日", "本"]


def reference_windows(context_length: int, room: int, stride: int) -> list:
    """The reference's loop: (start, length) of each window."""
    windows, start = [], 0
    while start < context_length:
        length = min(context_length - start, room)
        windows.append((start, length))
        if start + length == context_length:
            break
        start += min(length, stride)
    return windows


def test_windows_cover_long_context_with_max_context(tokenizer, examples):
    features = squad_features.build_features(examples, tokenizer, WINDOW, with_targets=True)
    inputs = features.inputs
    assert inputs["input_ids"].shape[1] == WINDOW.max_seq_length
    for n, example in enumerate(examples):
        rows = np.flatnonzero(inputs["example_index"] == n)
        question = tokenizer.ids([example.question])[0][:WINDOW.max_query_length]
        context = tokenizer.ids([example.context])[0]
        room = WINDOW.max_seq_length - len(question) - 3
        expected = reference_windows(len(context), room, WINDOW.doc_stride)
        assert [(inputs["window_start"][r], inputs["window_length"][r]) for r in rows] == \
            expected
        scored = np.zeros(len(context), int)
        for r, (start, length) in zip(rows, expected):
            ids = inputs["input_ids"][r]
            offset = len(question) + 2
            assert inputs["context_offset"][r] == offset
            assert list(ids[:offset + length + 1]) == (
                [tokenizer.cls_id] + question + [tokenizer.sep_id]
                + context[start:start + length] + [tokenizer.sep_id])
            assert ids[offset + length + 1:].sum() == 0
            assert inputs["segment_ids"][r, offset:offset + length + 1].all()
            positions = np.flatnonzero(inputs["max_context"][r])
            scored[start + positions - offset] += 1
            # The reference's rule, recomputed here for every piece of this window.
            for p in range(length):
                piece = start + p
                best = max(((min(piece - s, s + k - 1 - piece) + 0.01 * k, -j)
                            for j, (s, k) in enumerate(expected) if s <= piece < s + k))
                assert (p + offset in positions) == (best[1] == -expected.index((start, length)))
        assert (scored == 1).all()
    assert sum(inputs["example_index"] == 0) > 2  # q1 reads a context of several windows


def test_targets_point_at_the_answer_text(tokenizer, examples):
    features = squad_features.build_features(examples, tokenizer, WINDOW, with_targets=True)
    inputs = features.inputs
    for w in range(features.num_windows):
        n = inputs["example_index"][w]
        example = examples[n]
        if features.answerable[w] != 1:
            assert features.start_positions[w] == features.end_positions[w] == 0
            continue
        shift = inputs["window_start"][w] - inputs["context_offset"][w]
        start = features.piece_start[n][features.start_positions[w] + shift]
        end = features.piece_end[n][features.end_positions[w] + shift]
        assert example.context[start:end] == example.answer_texts[0]
    # Every answerable question has a window holding its answer; q6 has none.
    answered = {examples[n].qas_id for n, a in zip(inputs["example_index"], features.answerable)
                if a == 1}
    assert answered == {"q1", "q2", "q3", "q4", "q5"}


def test_window_config_validation():
    with pytest.raises(UserError, match="--doc_stride=0"):
        squad_features.WindowConfig(64, 0, 10).validate()
    with pytest.raises(UserError, match="no room for the context"):
        squad_features.WindowConfig(16, 8, 14).validate()
