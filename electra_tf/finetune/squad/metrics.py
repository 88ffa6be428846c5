"""The official SQuAD v1.1 / v2.0 evaluation, as the ELECTRA recipe reports its QA results.

Answers are compared after the official normalization (lower case, ASCII punctuation removed,
the articles a/an/the removed, whitespace collapsed). Exact match and token F1 take the best
score over the gold answers. For v2.0, a question whose gold answers are all empty after
normalization is unanswerable and only the empty prediction scores on it; the results carry
HasAns_* / NoAns_* breakdowns and, given a no-answer score per question, the threshold on that
score that maximizes EM and F1 (how the recipe picks the v2.0 null-score threshold on dev).

The figures and keys are the official scripts' on the same prediction files: v1.1 reports
`exact_match` (also as `exact`) and `f1` over every question, a missing prediction scoring 0;
v2.0 calls a question answerable when its answer list is non-empty, applies --na-prob-thresh
(`na_threshold`, default 1.0 as the script's, when `na_scores` are given) to `exact`/`f1`, and
searches the best threshold on the raw scores in the order of the no-answer scores (ties in
the mapping's order, as the script sorts its na-prob file), reporting 0.0 when abstaining on
every question is best, as the script does. `usable_threshold` gives the threshold the
fine-tuning then applies: the official one, or just below the lowest no-answer score in that
case, so that applying it really abstains everywhere.
"""

import collections
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
                    na_scores: Mapping[str, float]) -> tuple[float, float, bool]:
    """The official find_best_thresh: (best score in percent, its threshold, whether any
    threshold beats abstaining everywhere).

    Questions are answered in order of increasing no-answer score: answering an answerable
    question gains its score, answering an unanswerable one loses 1 unless the prediction is
    empty; abstaining scores 1 exactly on unanswerable questions.
    """
    current = sum(1 for qid in has_answer if not has_answer[qid])
    best, threshold, found = current, 0.0, False
    for qid in sorted(na_scores, key=lambda q: na_scores[q]):
        if qid not in raw_scores:
            continue
        if has_answer[qid]:
            current += raw_scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold, found = current, na_scores[qid], True
    return 100.0 * best / len(raw_scores), threshold, found


def usable_threshold(results: dict, na_scores: Mapping[str, float], key: str = "f1") -> float:
    """The no-answer threshold to apply: the official best_<key>_thresh, or, when abstaining
    everywhere is best (the script then says 0.0), just below the lowest no-answer score."""
    if results.get(f"_best_{key}_found", True):
        return float(results[f"best_{key}_thresh"])
    return min(na_scores.values()) - 1.0


def evaluate(examples, predictions: Mapping[str, str], na_scores: Mapping[str, float] = None,
             na_threshold: float = 1.0, version: int = 2) -> dict:
    """The official metrics of `predictions` ({question id: answer text}) on `examples`.

    `examples`: objects with `qas_id`, `answer_texts` (the gold texts; empty when unanswerable).
    `na_scores` ({question id: no-answer score}, higher = more likely unanswerable; v2.0): a
    question whose score exceeds `na_threshold` counts as answered with "" (official
    `--na-prob-thresh`); the results then also carry best_exact/best_f1 and their thresholds.
    v1.1: a question missing from `predictions` scores 0 (counted in `missing`); v2.0 skips it
    as the official script does. Scores are percentages, keys as in the official scripts.
    """
    exact, f1, has_answer = {}, {}, {}
    missing = 0
    for example in examples:
        qid = example.qas_id
        golds = gold_answers(example.answer_texts, version)
        has_answer[qid] = bool(list(example.answer_texts))
        if qid not in predictions:
            missing += 1
            if version == 1:
                exact[qid] = f1[qid] = 0.0
            continue
        prediction = predictions[qid]
        exact[qid] = float(max(exact_match(prediction, g) for g in golds))
        f1[qid] = max(f1_score(prediction, g, version) for g in golds)
    if not exact:
        raise ValueError("no questions to evaluate")
    if version == 1:
        return {"exact_match": 100.0 * sum(exact.values()) / len(exact),
                "exact": 100.0 * sum(exact.values()) / len(exact),
                "f1": 100.0 * sum(f1.values()) / len(f1), "total": len(exact),
                "missing": missing}

    def thresholded(raw: dict) -> dict:
        if na_scores is None:
            return dict(raw)
        return {q: float(not has_answer[q]) if na_scores[q] > na_threshold else s
                for q, s in raw.items()}

    exact_final, f1_final = thresholded(exact), thresholded(f1)

    def summary(qids: list[str], prefix: str = "") -> dict:
        return {f"{prefix}exact": 100.0 * sum(exact_final[q] for q in qids) / len(qids),
                f"{prefix}f1": 100.0 * sum(f1_final[q] for q in qids) / len(qids),
                f"{prefix}total": len(qids)}

    results = summary(list(exact))
    for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
        qids = [q for q in exact if has_answer[q] is wanted]
        if qids:
            results.update(summary(qids, prefix))
    if na_scores is not None:
        raw_predictions = {q: predictions[q] for q in exact}
        for key, raw in (("exact", exact), ("f1", f1)):
            score, threshold, found = _best_threshold(raw, raw_predictions, has_answer,
                                                      na_scores)
            results[f"best_{key}"], results[f"best_{key}_thresh"] = score, threshold
            results[f"_best_{key}_found"] = found
    results["missing"] = missing
    return results


def write_json(path: str, obj) -> None:
    """Writes predictions JSON as the official script's files are: keys in question order,
    non-ASCII text as it is (atomically)."""
    io.write_json(path, obj, sort_keys=False, ensure_ascii=False)
