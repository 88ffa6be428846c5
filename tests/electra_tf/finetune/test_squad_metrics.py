"""The official SQuAD evaluation, checked against EM/F1 values computed by hand."""

import json

import pytest

from electra_tf.finetune.squad import metrics as squad_metrics
from electra_tf.finetune.squad.reader import SquadExample


def _example(qid, texts):
    return SquadExample(qas_id=qid, question="q?", context="c", answer_texts=texts,
                        answer_starts=[0] * len(texts), is_impossible=not texts)


@pytest.mark.parametrize("text, expected", [
    ("The  Quick, brown fox!", "quick brown fox"),
    ("An apple a day", "apple day"),
    ("theater (1990s)", "theater 1990s"),
    ("  ", ""),
])
def test_normalize_answer(text, expected):
    assert squad_metrics.normalize_answer(text) == expected


def test_f1_by_hand():
    # pred {cat, sat} vs gold {cat, sat, on, mat}: P = 1, R = 1/2.
    assert squad_metrics.f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    # Repeated tokens count with multiplicity: common y,y: P = 2/3, R = 2/4 -> F1 = 4/7.
    assert squad_metrics.f1_score("x y y", "y y y z") == pytest.approx(4 / 7)
    assert squad_metrics.f1_score("cat", "dog") == 0.0
    assert squad_metrics.f1_score("", "", version=2) == 1.0
    assert squad_metrics.f1_score("x", "", version=2) == 0.0
    assert squad_metrics.f1_score("", "", version=1) == 0.0


def test_evaluate_v2_by_hand():
    examples = [_example("q1", ["Denver Broncos", "the Denver Broncos"]),
                _example("q2", ["1990s"]),
                _example("q3", []),
                _example("q4", [])]
    predictions = {"q1": "Broncos", "q2": "1990s,", "q3": "", "q4": "foo"}
    na_scores = {"q1": -2.0, "q2": -1.0, "q3": 3.0, "q4": 0.5}
    got = squad_metrics.evaluate(examples, predictions, na_scores=na_scores)
    # Per question EM: 0, 1, 1, 0; F1: 2/3 (P=1, R=1/2 vs "denver broncos"), 1, 1, 0.
    assert got["exact"] == pytest.approx(50.0)
    assert got["f1"] == pytest.approx(100 * (2 / 3 + 2) / 4)
    assert got["HasAns_exact"] == pytest.approx(50.0)
    assert got["HasAns_f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert got["NoAns_exact"] == got["NoAns_f1"] == pytest.approx(50.0)
    assert got["total"] == 4 and got["HasAns_total"] == 2 and got["NoAns_total"] == 2
    # Answering in order of no-answer score: abstain-all = 2; +q1 (EM 0) = 2; +q2 = 3 (best,
    # threshold -1); +q4 ("foo" on unanswerable) = 2; +q3 ("") = 2.
    assert got["best_exact"] == pytest.approx(75.0)
    assert got["best_exact_thresh"] == -1.0
    # F1: 2 -> 2 2/3 -> 3 2/3 (best at -1) -> 2 2/3 -> 2 2/3.
    assert got["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert got["best_f1_thresh"] == -1.0
    # Applying a threshold of 0: q3 and q4 become "", so q4 is now right.
    applied = squad_metrics.evaluate(examples, predictions, na_scores=na_scores,
                                     na_threshold=0.0)
    assert applied["exact"] == pytest.approx(75.0)
    assert applied["NoAns_exact"] == pytest.approx(100.0)


def test_abstaining_everywhere_reports_the_official_zero_threshold():
    examples = [_example("a", ["x"]), _example("b", [])]
    predictions = {"a": "wrong", "b": "wrong"}
    na_scores = {"a": 1.0, "b": 2.0}
    got = squad_metrics.evaluate(examples, predictions, na_scores=na_scores)
    # Abstain-all = 1 of 2; answering a (EM 0) = 1, then b ("wrong") = 0: nothing beats it,
    # so the official script keeps its initial threshold 0.0.
    assert got["best_exact"] == pytest.approx(50.0) and got["best_exact_thresh"] == 0.0
    usable = squad_metrics.usable_threshold(got, na_scores, "exact")
    assert usable < 1.0
    applied = squad_metrics.evaluate(examples, predictions, na_scores=na_scores,
                                     na_threshold=usable)
    assert applied["exact"] == pytest.approx(50.0)


def test_default_na_threshold_is_the_official_one():
    # --na-prob-thresh defaults to 1.0: b (1.5 > 1) counts as abstained, a (0.9) does not.
    examples = [_example("a", []), _example("b", [])]
    got = squad_metrics.evaluate(examples, {"a": "x", "b": "y"},
                                 na_scores={"a": 0.9, "b": 1.5})
    assert got["exact"] == pytest.approx(50.0) and got["NoAns_exact"] == pytest.approx(50.0)


def test_best_threshold_ties_follow_the_na_score_order():
    # q1 right (+1), q2 unanswerable answered "x" (-1), both at no-answer score 0.5; abstain-
    # all scores 1 of 2. Official order = the mapping's: q1 first reaches 2 (100%, at 0.5);
    # q2 first goes 0 then back to 1, never above 1, so 50% at threshold 0.0.
    examples = [_example("q1", ["yes"]), _example("q2", [])]
    predictions = {"q1": "yes", "q2": "x"}
    first = squad_metrics.evaluate(examples, predictions, na_scores={"q1": 0.5, "q2": 0.5})
    assert first["best_exact"] == pytest.approx(100.0) and first["best_exact_thresh"] == 0.5
    second = squad_metrics.evaluate(examples, predictions, na_scores={"q2": 0.5, "q1": 0.5})
    assert second["best_exact"] == pytest.approx(50.0) and second["best_exact_thresh"] == 0.0


def test_v2_answerable_means_a_non_empty_answer_list():
    # "The" normalizes to "": the official script still counts the question as HasAns, and
    # scores it against [""], so the empty prediction is right (EM 1, F1 1).
    examples = [_example("a", ["The"]), _example("b", ["Rome"])]
    got = squad_metrics.evaluate(examples, {"a": "", "b": "in Rome"})
    # b: EM 0; F1 tokens {in, rome} vs {rome}: P 1/2, R 1 -> 2/3.
    assert got["HasAns_total"] == 2 and "NoAns_total" not in got
    assert got["exact"] == pytest.approx(50.0)
    assert got["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_v2_skips_a_missing_prediction_like_the_official_script():
    examples = [_example("a", ["x"]), _example("b", [])]
    got = squad_metrics.evaluate(examples, {"b": ""})
    # Only b is scored (EM 1): total 1.
    assert got["total"] == 1 and got["exact"] == pytest.approx(100.0) and got["missing"] == 1


def test_evaluate_v1_missing_prediction_scores_zero():
    examples = [_example("a", ["Paris", "paris, France"]), _example("b", ["Rome"])]
    got = squad_metrics.evaluate(examples, {"a": "Paris France"}, version=1)
    # a: matches "paris, France" after punctuation removal: EM 1, F1 1. b missing: 0.
    assert got["exact_match"] == got["exact"] == pytest.approx(50.0)
    assert got["f1"] == pytest.approx(50.0) and got["total"] == 2
    assert got["missing"] == 1
    assert "HasAns_exact" not in got


def test_write_json_is_atomic_and_official_format(tmp_path):
    path = tmp_path / "out" / "predictions.json"
    squad_metrics.write_json(str(path), {"q1": "Zürich", "q2": ""})
    assert json.loads(path.read_text(encoding="utf-8")) == {"q1": "Zürich", "q2": ""}
    assert [p.name for p in path.parent.iterdir()] == ["predictions.json"]
