"""SQuAD windows and span search on the real tokenizer: exact original substrings, windows that
cover long contexts, max-context scoring, and answers read back from logits."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.cli import UserError
from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import postprocess as squad_postprocess
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


def brute_force(start, end, max_context, context_mask, max_answer_length):
    best = []
    for i in np.flatnonzero(max_context):
        for j in np.flatnonzero(context_mask):
            if i <= j < i + max_answer_length:
                best.append((start[i] + end[j], i, j))
    return sorted(best, reverse=True)


def test_span_candidates_match_brute_force():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 20)).astype(np.float32)
    end = rng.normal(size=(3, 20)).astype(np.float32)
    context = np.zeros((3, 20), bool)
    context[:, 5:17] = True
    max_context = context.copy()
    max_context[1, 5:9] = False
    max_context[2, :] = False  # no valid start: no candidate at all
    scores, starts, ends = (t.numpy() for t in squad_postprocess.span_candidates(
        start, end, max_context, context, max_answer_length=4, k=5))
    for w in range(2):
        expected = brute_force(start[w], end[w], max_context[w], context[w], 4)[:5]
        np.testing.assert_allclose(scores[w], [e[0] for e in expected], rtol=1e-6)
        assert list(zip(starts[w], ends[w])) == [(e[1], e[2]) for e in expected]
    assert (scores[2] <= -1e8).all()


def test_postprocess_reads_answers_from_logits(tokenizer, examples):
    features = squad_features.build_features(examples, tokenizer, WINDOW, with_targets=True)
    count, length = features.inputs["input_ids"].shape
    start_logits = np.zeros((count, length), np.float32)
    end_logits = np.zeros((count, length), np.float32)
    answerable_logits = np.full(count, -3.0, np.float32)
    for w in range(count):
        if features.answerable[w] == 1:
            start_logits[w, features.start_positions[w]] = 5.0
            end_logits[w, features.end_positions[w]] = 5.0
            answerable_logits[w] = 2.0
    predicted = squad_postprocess.postprocess(examples, features, start_logits, end_logits,
                                              answerable_logits, n_best_size=3,
                                              max_answer_length=10)
    for example in examples:
        if example.is_impossible:
            assert predicted.na_scores[example.qas_id] == pytest.approx(3.0)
            continue
        assert predicted.answers[example.qas_id] == example.answer_texts[0]
        assert predicted.na_scores[example.qas_id] == pytest.approx(-2.0)
        nbest = predicted.nbest[example.qas_id]
        assert len(nbest) == 3 and nbest[0]["score"] == pytest.approx(10.0)
        assert sum(e["probability"] for e in nbest) == pytest.approx(1.0)
        assert all(example.context[e["start"]:e["end"]] == e["text"] for e in nbest)
    assert predicted.final(0.0)["q6"] == "" and predicted.final(0.0)["q4"] == "Le Zinc"
