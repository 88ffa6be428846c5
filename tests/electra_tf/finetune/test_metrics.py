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
    # IOBES under conlleval.pl, which has no rule for S: a type change opens and closes
    # chunks, but "E-PER S-PER" neither ends nor starts one, so PER runs from 1 to 3.
    (["S-LOC", "B-PER", "E-PER", "S-PER"], {("LOC", 0, 0), ("PER", 1, 3)}),
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


# Hand-worked from conlleval.pl's rules. endOfChunk between previous tag p and tag t: (p, t) in
# B-B, B-O, I-B, I-O, E-E, E-I, E-O, or p not O/. with a type change; startOfChunk: (p, t) in
# B-B, I-B, O-B, O-I, E-E, E-I, O-E, or t not O/. with a type change. A chunk is correct when
# gold and prediction start it at one token with one type and both end it at one token.
@pytest.mark.parametrize("gold, predicted, counts", [
    # IOB1: I after O opens a chunk, B splits two adjacent NPs. Gold NP(0-1) NP(2-3) VP(5);
    # predicted NP(0-3) VP(5): gold ends at 2, the prediction does not, so only VP is right.
    (["I-NP", "I-NP", "B-NP", "I-NP", "O", "I-VP"],
     ["I-NP", "I-NP", "I-NP", "I-NP", "O", "I-VP"], (1, 3, 2)),
    # IOB2 gold, chunks of the prediction opened by I-: same starts, ends, types: both right.
    (["B-PER", "I-PER", "O", "B-LOC"], ["I-PER", "I-PER", "O", "I-LOC"], (2, 2, 2)),
    # A type change breaks the predicted PER: PER(0) LOC(1) LOC(3) against PER(0-1) LOC(3).
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-LOC", "O", "B-LOC"], (1, 2, 3)),
    # IOBES: conlleval.pl has no S rules: S-PER S-PER is one chunk (the second S neither ends
    # nor starts one), as is B-PER E-PER B-PER E-PER (E-B is in neither list).
    (["S-PER", "S-PER", "O"], ["B-PER", "E-PER", "O"], (1, 1, 1)),
    (["B-PER", "E-PER", "B-PER", "E-PER"], ["B-PER", "E-PER", "S-LOC", "S-PER"], (0, 1, 3)),
    # IOBES S-/E- ending at a type change, then O: LOC(0) PER(1-2) both sides.
    (["S-LOC", "B-PER", "E-PER", "O"], ["S-LOC", "I-PER", "E-PER", "O"], (2, 2, 2)),
    # A tag without "-" is all prefix with type "": it never opens a chunk.
    (["B-NP", "O"], ["NP", "NP"], (0, 1, 0)),
])
def test_chunk_counts_are_conllevals(gold, predicted, counts):
    assert metrics.conlleval_counts([gold], [predicted]) == counts


def test_span_scores_are_conllevals_overall_figures():
    gold = [["I-NP", "I-NP", "B-NP", "I-NP", "O", "I-VP"], ["B-PER", "I-PER", "O", "B-LOC"],
            ["B-NP"], ["I-NP"]]
    predicted = [["I-NP", "I-NP", "I-NP", "I-NP", "O", "I-VP"],
                 ["B-PER", "I-LOC", "O", "B-LOC"], ["B-NP"], ["I-NP"]]
    # Correct 1 + 1 + 1 + 1 (the sentence boundary closes NP and the next I- opens one);
    # gold 3 + 2 + 1 + 1 = 7, predicted 2 + 3 + 1 + 1 = 7: P = R = F1 = 4/7.
    scores = metrics.span_scores(gold, predicted)
    assert scores == pytest.approx({"precision": 4 / 7, "recall": 4 / 7, "f1": 4 / 7})
