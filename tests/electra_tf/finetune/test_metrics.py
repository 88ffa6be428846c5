"""Fine-tuning metrics against values worked out by hand (see the comments)."""

import math

import pytest

from electra_tf.finetune import metrics


def test_accuracy():
    assert metrics.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


def test_f1_of_positive_class():
    # TP = 2 (rows 0 and 3), 3 predicted positives, 3 actual positives: P = R = 2/3.
    assert metrics.f1([1, 0, 1, 1, 0], [1, 1, 0, 1, 0]) == pytest.approx(2 / 3)
    # No positive anywhere: F1 is defined as 0, not a division by zero.
    assert metrics.f1([0, 0], [0, 0]) == 0.0


def test_macro_f1():
    # Class 1 F1 = 2/3 (above); class 0: TP = 1 (row 4), 2 predicted, 2 actual -> 1/2.
    assert metrics.macro_f1([1, 0, 1, 1, 0], [1, 1, 0, 1, 0], 2) == pytest.approx((2 / 3 + 0.5) / 2)


def test_mcc_binary():
    # TP = 2, TN = 2, FP = 1, FN = 1: (2*2 - 1*1) / sqrt(3*3*3*3) = 1/3.
    assert metrics.mcc([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]) == pytest.approx(1 / 3)
    assert metrics.mcc([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert metrics.mcc([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    # Constant predictions: zero denominator, reported as 0 (as CoLA scorers do).
    assert metrics.mcc([1, 0, 1], [1, 1, 1]) == 0.0


def test_mcc_multiclass():
    # Confusion rows (true) 0:[2,0,0] 1:[0,0,1] 2:[0,0,1]; t = [2,1,1], p = [2,0,2], s = 4, c = 3:
    # (3*4 - (4 + 0 + 2)) / sqrt((16 - 8) * (16 - 6)) = 6 / sqrt(80).
    assert metrics.mcc([0, 1, 2, 0], [0, 2, 2, 0]) == pytest.approx(6 / math.sqrt(80))


def test_pearson():
    # dx = [-1, 0, 1], dy = [-7/3, -1/3, 8/3]: 5 / sqrt(2 * 114/9).
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    assert metrics.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_spearman_with_ties():
    # Ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5).
    assert list(metrics.rank([1, 2, 2, 3])) == [1, 2.5, 2.5, 4]
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    # Monotone but not linear: Spearman 1, Pearson below 1.
    assert metrics.spearman([1, 2, 3, 4], [1, 8, 27, 1000]) == pytest.approx(1.0)


@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 1), ("LOC", 3, 3)}),
    # IOB1: I starts a chunk after O; B only separates two adjacent chunks of one type.
    (["I-PER", "I-PER", "B-PER", "O", "I-ORG"], {("PER", 0, 1), ("PER", 2, 2), ("ORG", 4, 4)}),
    # IOBES.
    (["S-LOC", "B-PER", "E-PER", "S-PER"], {("LOC", 0, 0), ("PER", 1, 2), ("PER", 3, 3)}),
    # A type change inside a chunk closes it.
    (["B-PER", "I-LOC", "I-LOC"], {("PER", 0, 0), ("LOC", 1, 2)}),
    (["O", "O"], set()),
])
def test_spans(tags, expected):
    assert metrics.spans(tags) == expected


def test_span_scores():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    # Gold spans: PER(0-1), LOC(3), ORG(0) = 3; predicted: PER(0), LOC(3), ORG(0), MISC(1) = 4;
    # correct: LOC and ORG = 2. P = 2/4, R = 2/3, F1 = 2*2/(4+3) = 4/7.
    scores = metrics.span_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(4 / 7)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError):
        metrics.span_scores([["O"]], [["O", "O"]])
