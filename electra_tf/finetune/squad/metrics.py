"""The official SQuAD v1.1 / v2.0 evaluation, as the ELECTRA recipe reports its QA results.

Answers are compared after the official normalization (lower case, ASCII punctuation removed,
the articles a/an/the removed, whitespace collapsed). Exact match and token F1 take the best
score over the gold answers. For v2.0, a question whose gold answers are all empty after
normalization is unanswerable and only the empty prediction scores on it; the results carry
HasAns_* / NoAns_* breakdowns and, given a no-answer score per question, the threshold on that
score that maximizes EM and F1 (how the recipe picks the v2.0 null-score threshold on dev).

One documented difference from the official script: when answering no question at all is the
best choice, the official script reports threshold 0.0, which is meaningless for unbounded
scores; here the threshold is then set just below the lowest no-answer score, so that applying
it really abstains on every question.
"""

import collections
import math
import re
import string
from collections.abc import Iterable, Mapping

from electra_tf import io

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop articles, collapse whitespace (official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, version: int = 2) -> float:
    """Bag-of-tokens F1 of two answers after normalization.

    v2.0 scores an empty answer against an empty one as 1 (and against anything else as 0);
    v1.1 has no empty answers and scores any empty side as 0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if version == 2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answer_texts: Iterable[str], version: int = 2) -> list[str]:
    """The answers a prediction is scored against; [""] marks a v2.0 unanswerable question."""
    texts = list(answer_texts)
    if version == 2:
        texts = [t for t in texts if normalize_answer(t)]
        return texts or [""]
    return texts


def _best_threshold(raw_scores: Mapping[str, float], predictions: Mapping[str, str],
                    has_answer: Mapping[str, bool],
                    na_scores: Mapping[str, float]) -> tuple[float, float]:
    """The no-answer threshold maximizing the total score, and that score in percent.

    Questions are answered in order of increasing no-answer score: answering an answerable
    question gains its score, answering an unanswerable one loses 1 unless the prediction is
    empty; abstaining scores 1 exactly on unanswerable questions.
    """
    current = sum(1 for qid in raw_scores if not has_answer[qid])
    best, threshold = current, min(na_scores[q] for q in raw_scores) - 1.0
    for qid in sorted(raw_scores, key=lambda q: na_scores[q]):
        if has_answer[qid]:
            current += raw_scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold = current, na_scores[qid]
    return 100.0 * best / len(raw_scores), threshold


def evaluate(examples, predictions: Mapping[str, str], na_scores: Mapping[str, float] = None,
             na_threshold: float = None, version: int = 2) -> dict:
    """The official metrics of `predictions` ({question id: answer text}) on `examples`.

    `examples`: objects with `qas_id`, `answer_texts` (the gold texts; empty when unanswerable).
    `na_scores` ({question id: no-answer score}, higher = more likely unanswerable): with
    `na_threshold`, a question whose score exceeds it counts as answered with "" (official
    `--na-prob-thresh`); v2.0 results then also carry best_exact/best_f1 and their thresholds.
    A question missing from `predictions` scores 0 and is counted in `missing`.
    Scores are percentages, keys as in the official script.
    """
    exact, f1, has_answer, final = {}, {}, {}, {}
    missing = 0
    for example in examples:
        qid = example.qas_id
        golds = gold_answers(example.answer_texts, version)
        has_answer[qid] = any(golds)
        if qid not in predictions:
            missing += 1
            exact[qid] = f1[qid] = 0.0
            final[qid] = ""
            continue
        prediction = predictions[qid]
        if (na_scores is not None and na_threshold is not None
                and na_scores[qid] > na_threshold):
            prediction = ""
        final[qid] = prediction
        exact[qid] = float(max(exact_match(prediction, g) for g in golds))
        f1[qid] = max(f1_score(prediction, g, version) for g in golds)
    if not exact:
        raise ValueError("no questions to evaluate")

    def summary(qids: list[str], prefix: str = "") -> dict:
        return {f"{prefix}exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
                f"{prefix}f1": 100.0 * sum(f1[q] for q in qids) / len(qids),
                f"{prefix}total": len(qids)}

    results = summary(list(exact))
    if version == 2:
        for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
            qids = [q for q in exact if has_answer[q] is wanted]
            if qids:
                results.update(summary(qids, prefix))
        if na_scores is not None:
            raw_predictions = {q: predictions.get(q, "") for q in exact}
            scores = {q: na_scores.get(q, math.inf) for q in exact}
            results["best_exact"], results["best_exact_thresh"] = _best_threshold(
                exact, raw_predictions, has_answer, scores)
            results["best_f1"], results["best_f1_thresh"] = _best_threshold(
                f1, raw_predictions, has_answer, scores)
    results["missing"] = missing
    return results


def write_json(path: str, obj) -> None:
    """Writes predictions JSON as the official script's files are: keys in question order,
    non-ASCII text as it is (atomically)."""
    io.write_json(path, obj, sort_keys=False, ensure_ascii=False)
