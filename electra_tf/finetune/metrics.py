"""The metrics GLUE and CoNLL report for the fine-tuning tasks of the ELECTRA recipe.

Accuracy, F1 (MRPC and QQP: F1 of the positive class), Matthews correlation (CoLA), Pearson and
Spearman correlation (STS-B) and span-level precision/recall/F1 of tagged chunks as the standard
`conlleval` script computes them (its chunk start/end rules and its one-pass counting, so IOB1,
IOB2/BIO and IOBES tags, chunks opened by I- and chunks cut by a type change score as conlleval
scores them). The rules are those of the standard conlleval.pl, which knows B, I, E and O but has no
rule for S: with IOBES tags two adjacent same-type chunks "S-X S-X" or "E-X B-X" are one chunk for
conlleval, and so they are here. Plain NumPy: the project does not depend on scikit-learn or SciPy.
"""

from collections.abc import Sequence

import numpy as np


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1(labels: Sequence[int], predictions: Sequence[int], positive: int = 1) -> float:
    """F1 of one class (GLUE's F1 for MRPC and QQP is that of class 1)."""
    labels, predictions = _pair(labels, predictions)
    true_pos = np.sum((predictions == positive) & (labels == positive))
    predicted = np.sum(predictions == positive)
    actual = np.sum(labels == positive)
    return _f1(true_pos, predicted, actual)


def macro_f1(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over `num_classes` classes."""
    return float(np.mean([f1(labels, predictions, positive=k) for k in range(num_classes)]))


def mcc(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Matthews correlation; for more than two classes Gorodkin's R_K generalization.

    Defined as 0 when either the labels or the predictions are constant (a zero denominator).
    """
    labels, predictions = _pair(labels, predictions)
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.float64)
    for true, pred in zip(labels, predictions):
        confusion[index[true], index[pred]] += 1
    total = confusion.sum()
    correct = np.trace(confusion)
    true_per_class = confusion.sum(axis=1)
    pred_per_class = confusion.sum(axis=0)
    numerator = correct * total - np.dot(true_per_class, pred_per_class)
    denominator = np.sqrt((total ** 2 - np.dot(pred_per_class, pred_per_class)) *
                          (total ** 2 - np.dot(true_per_class, true_per_class)))
    return float(numerator / denominator) if denominator else 0.0


def pearson(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    x = np.asarray(labels, dtype=np.float64)
    y = np.asarray(predictions, dtype=np.float64)
    if x.shape != y.shape or not x.size:
        raise ValueError(f"need two non-empty sequences of one length, got {x.shape} {y.shape}")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator else 0.0


def rank(values: Sequence[float]) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span (as Spearman needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson of the tie-averaged ranks."""
    return pearson(rank(labels), rank(predictions))


def _split_tag(tag: str) -> tuple[str, str]:
    """conlleval's split: 'B-PER' -> ('B', 'PER') at the first '-'; a tag without '-' is all
    prefix with type '' ('O' -> ('O', ''); a bare 'NP' -> ('NP', ''), which opens no chunk)."""
    prefix, sep, kind = tag.partition("-")
    return (prefix, kind) if sep else (tag, "")


# conlleval.pl's endOfChunk and startOfChunk pairs (previous tag, tag); "S" has no rule there.
_END_PAIRS = frozenset({("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"), ("E", "I"),
                        ("E", "O")})
_START_PAIRS = frozenset({("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"),
                          ("E", "I"), ("O", "E")})


def _chunk_ends(prev_prefix, prev_kind, prefix, kind) -> bool:
    """conlleval.pl's endOfChunk: a chunk ended at the previous token."""
    return ((prev_prefix, prefix) in _END_PAIRS
            or (prev_prefix not in ("O", ".") and prev_kind != kind)
            or prev_prefix in ("[", "]"))


def _chunk_starts(prev_prefix, prev_kind, prefix, kind) -> bool:
    """conlleval.pl's startOfChunk: a chunk starts at the current token."""
    return ((prev_prefix, prefix) in _START_PAIRS
            or (prefix not in ("O", ".") and prev_kind != kind)
            or prefix in ("[", "]"))


def spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Chunks of one sentence as (type, first token, last token), by conlleval's rules."""
    found = set()
    prev_prefix, prev_kind, start = "O", "", None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split_tag(tag)
        if start is not None and _chunk_ends(prev_prefix, prev_kind, prefix, kind):
            found.add((prev_kind, start, i - 1))
            start = None
        if _chunk_starts(prev_prefix, prev_kind, prefix, kind):
            start = i
        prev_prefix, prev_kind = prefix, kind
    return found


def conlleval_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
                     ) -> tuple[int, int, int]:
    """(correct chunks, gold chunks, predicted chunks) counted as conlleval counts them: one
    pass over the tokens, sentences separated by boundary lines that read as "O O"."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    correct = found_gold = found_predicted = 0
    in_correct = False
    last_gold, last_pred = ("O", ""), ("O", "")
    for gold_tags, predicted_tags in zip(gold, predicted):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError("a predicted sentence differs in length from its gold sentence")
        for gold_tag, predicted_tag in list(zip(gold_tags, predicted_tags)) + [("O", "O")]:
            g, p = _split_tag(gold_tag), _split_tag(predicted_tag)
            if in_correct:
                gold_end = _chunk_ends(*last_gold, *g)
                pred_end = _chunk_ends(*last_pred, *p)
                if gold_end and pred_end and last_pred[1] == last_gold[1]:
                    in_correct = False
                    correct += 1
                elif gold_end != pred_end or p[1] != g[1]:
                    in_correct = False
            gold_start = _chunk_starts(*last_gold, *g)
            pred_start = _chunk_starts(*last_pred, *p)
            if gold_start and pred_start and p[1] == g[1]:
                in_correct = True
            found_gold += gold_start
            found_predicted += pred_start
            last_gold, last_pred = g, p
    return correct, found_gold, found_predicted


def span_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """conlleval's overall precision, recall and FB1 (as fractions, not percentages)."""
    correct, num_gold, num_predicted = conlleval_counts(gold, predicted)
    precision = correct / num_predicted if num_predicted else 0.0
    recall = correct / num_gold if num_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _f1(true_pos, predicted, actual) -> float:
    return float(2.0 * true_pos / (predicted + actual)) if predicted + actual else 0.0


def _pair(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape or not labels.size:
        raise ValueError(
            f"need two non-empty sequences of one length, got {labels.shape} {predictions.shape}")
    return labels, predictions
