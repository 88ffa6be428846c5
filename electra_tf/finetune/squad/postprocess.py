"""From span logits to SQuAD answers: the recipe's n-best span search and v2.0 null score.

Per window, every (start, end) pair with start on a max-context token of the context, end on a
context token, start <= end and at most --max_answer_length tokens is scored as
start_logit + end_logit; the best --n_best_size spans per window come from an in-graph search
(`span_candidates`, also used by the exported serving signature). Per question, the candidates
of all its windows are mapped to character offsets in the original context, deduplicated and
ranked; the best one is the answer, and the n-best list carries softmax probabilities.

For SQuAD 2.0 the no-answer score of a question is minus the highest answerability logit over
its windows (higher = more likely unanswerable); a question is answered with "" when that score
exceeds the threshold, which is chosen on dev to maximize F1 (`squad/metrics.py`).
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

# Windows scored per call of the span search.
SEARCH_BATCH = 64
# Logit added to impossible spans; any real span scores far above it.
_IMPOSSIBLE = -1e9


def span_candidates(start_logits: tf.Tensor, end_logits: tf.Tensor, max_context: tf.Tensor,
                    context_mask: tf.Tensor, max_answer_length: int, k: int):
    """The k best spans per window: (scores [W, k], start positions [W, k], end positions).

    `max_context` (bool [W, T]): allowed start positions; `context_mask` (bool [W, T]):
    allowed end positions. A window with fewer than k valid spans pads with scores <= -1e9.
    """
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    length = tf.shape(start_logits)[1]
    width = max_answer_length
    # Band of the score matrix: end = start + offset, offset < max_answer_length.
    end_index = tf.range(length)[:, None] + tf.range(width)[None, :]  # [T, A]
    inside = end_index < length
    end_index = tf.minimum(end_index, length - 1)
    end_scores = tf.gather(end_logits, end_index, axis=1)  # [W, T, A]
    end_ok = tf.gather(context_mask, end_index, axis=1)
    valid = tf.logical_and(tf.logical_and(end_ok, inside[None]), max_context[:, :, None])
    scores = tf.where(valid, start_logits[:, :, None] + end_scores, _IMPOSSIBLE)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    top = tf.math.top_k(flat, k=tf.minimum(k, tf.shape(flat)[1]))
    starts = top.indices // width
    return top.values, starts, starts + top.indices % width


@dataclasses.dataclass
class Predictions:
    answers: dict  # question id -> best non-empty answer text ("" when no span is valid)
    na_scores: dict  # question id -> no-answer score (v2.0; absent for v1.1)
    nbest: dict  # question id -> [{"text", "start", "end", "score", "probability"}]

    def final(self, threshold: float = None) -> dict:
        """{question id: answer}, "" where the no-answer score exceeds `threshold`."""
        if threshold is None:
            return dict(self.answers)
        return {q: "" if self.na_scores[q] > threshold else a for q, a in self.answers.items()}


def postprocess(examples, features, start_logits: np.ndarray, end_logits: np.ndarray,
                answerable_logits: np.ndarray = None, n_best_size: int = 20,
                max_answer_length: int = 30) -> Predictions:
    """Answers for `examples` from the model outputs on `features` (`SquadFeatures` rows).

    `answerable_logits` [W] (v2.0) gives each question its no-answer score.
    """
    inputs = features.inputs
    max_context = inputs["max_context"]
    length = max_context.shape[1]
    position = np.arange(length)[None, :] - inputs["context_offset"][:, None]
    context_mask = (position >= 0) & (position < inputs["window_length"][:, None])
    per_example = collections.defaultdict(list)
    for begin in range(0, features.num_windows, SEARCH_BATCH):
        rows = slice(begin, begin + SEARCH_BATCH)
        scores, starts, ends = (t.numpy() for t in span_candidates(
            start_logits[rows], end_logits[rows], max_context[rows], context_mask[rows],
            max_answer_length, n_best_size))
        for w, row_scores, row_starts, row_ends in zip(range(begin, begin + len(scores)),
                                                       scores, starts, ends):
            n = inputs["example_index"][w]
            shift = inputs["window_start"][w] - inputs["context_offset"][w]
            for score, s, e in zip(row_scores, row_starts, row_ends):
                if score <= _IMPOSSIBLE / 2:
                    break
                per_example[n].append((float(score), int(features.piece_start[n][s + shift]),
                                       int(features.piece_end[n][e + shift])))
    na_best = {}
    if answerable_logits is not None:
        for w, logit in enumerate(np.asarray(answerable_logits, np.float64)):
            n = inputs["example_index"][w]
            na_best[n] = max(na_best.get(n, -np.inf), logit)
    answers, na_scores, nbest = {}, {}, {}
    for n, example in enumerate(examples):
        best = {}
        for score, start, end in sorted(per_example[n], reverse=True):
            best.setdefault((start, end), score)
            if len(best) == n_best_size:
                break
        spans = sorted(best.items(), key=lambda item: -item[1])
        scores = np.array([score for _, score in spans])
        probabilities = np.exp(scores - scores.max()) if spans else scores
        probabilities = probabilities / probabilities.sum() if spans else probabilities
        nbest[example.qas_id] = [
            {"text": example.context[start:end], "start": start, "end": end, "score": score,
             "probability": float(p)}
            for ((start, end), score), p in zip(spans, probabilities)]
        answers[example.qas_id] = nbest[example.qas_id][0]["text"] if spans else ""
        if answerable_logits is not None:
            na_scores[example.qas_id] = -float(na_best[n])
    return Predictions(answers, na_scores, nbest)
