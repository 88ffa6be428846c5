"""From the QA model's beam to SQuAD answers: the reference's decoding and v2.0 null score.

Each window carries the model's beam (squad/model.py): its top starts by log-probability and,
for each, its top ends. A candidate (start, end) is dropped when it starts at 0 ([CLS]), when
either end lies outside the window's context, when it ends before it starts, when it is longer
than --max_answer_length pieces, or when its start is not on a token whose max-context window
this is; the rest score start log-prob + end log-prob (`joint_candidates`, also the exported
serving signature's search). Per question, the candidates of all its windows are mapped to
character offsets in the original context and ranked (ties: the earlier window, start and end
of the beam first); the best one is the answer, the --n_best_size best distinct spans form the
n-best list with softmax probabilities.

For SQuAD 2.0 the no-answer score of a question is the minimum over its windows of the
impossibility logit (higher = more likely unanswerable); a question is answered with "" when
that score exceeds the threshold, chosen on dev (`squad/metrics.py`).
"""

import collections
import dataclasses

import numpy as np
import tensorflow as tf

# Windows scored per call of the span search.
SEARCH_BATCH = 256
# Score of a dropped candidate; every kept one scores far above it.
IMPOSSIBLE = -1e9


def joint_candidates(start_top_log_probs, start_top_index, end_top_log_probs, end_top_index,
                     max_context, context_mask, max_answer_length: int):
    """Candidates of every window, flattened start-major: (scores [W, K*K], starts, ends).

    `max_context` (bool [W, T]): tokens a span may start at; `context_mask` (bool [W, T]): the
    window's context tokens. Dropped candidates score IMPOSSIBLE.
    """
    starts = tf.cast(start_top_index, tf.int32)
    ends = tf.cast(end_top_index, tf.int32)
    k = tf.shape(ends)[2]
    starts = tf.tile(starts[:, :, None], [1, 1, k])
    start_ok = tf.logical_and(tf.gather(max_context, starts, batch_dims=1),
                              tf.gather(context_mask, starts, batch_dims=1))
    end_ok = tf.gather(context_mask, ends, batch_dims=1)
    valid = tf.logical_and(start_ok, end_ok)
    valid = tf.logical_and(valid, starts > 0)
    valid = tf.logical_and(valid, ends >= starts)
    valid = tf.logical_and(valid, ends - starts + 1 <= max_answer_length)
    scores = (tf.cast(start_top_log_probs, tf.float32)[:, :, None]
              + tf.cast(end_top_log_probs, tf.float32))
    scores = tf.where(valid, scores, IMPOSSIBLE)
    rows = tf.shape(scores)[0]
    return (tf.reshape(scores, [rows, -1]), tf.reshape(starts, [rows, -1]),
            tf.reshape(ends, [rows, -1]))


def context_mask(inputs: dict) -> np.ndarray:
    """bool [W, T]: the context tokens of each window (`build_windows` bookkeeping)."""
    length = inputs["max_context"].shape[1]
    position = np.arange(length)[None, :] - inputs["context_offset"][:, None]
    return (position >= 0) & (position < inputs["window_length"][:, None])


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


def postprocess(examples, features, outputs: dict, version: int = 2, n_best_size: int = 20,
                max_answer_length: int = 30) -> Predictions:
    """Answers for `examples` from the model's beam `outputs` on `features` (SquadFeatures
    rows): start_top_log_probs, start_top_index, end_top_log_probs, end_top_index and, for
    2.0, impossible_logits."""
    inputs = features.inputs
    mask = context_mask(inputs)
    per_example = collections.defaultdict(list)
    for begin in range(0, features.num_windows, SEARCH_BATCH):
        rows = slice(begin, begin + SEARCH_BATCH)
        scores, starts, ends = (t.numpy() for t in joint_candidates(
            outputs["start_top_log_probs"][rows], outputs["start_top_index"][rows],
            outputs["end_top_log_probs"][rows], outputs["end_top_index"][rows],
            inputs["max_context"][rows], mask[rows], max_answer_length))
        for w, row_scores, row_starts, row_ends in zip(range(begin, begin + len(scores)),
                                                       scores, starts, ends):
            n = inputs["example_index"][w]
            shift = inputs["window_start"][w] - inputs["context_offset"][w]
            for score, s, e in zip(row_scores, row_starts, row_ends):
                if score <= IMPOSSIBLE / 2:
                    continue
                per_example[n].append((float(score), int(features.piece_start[n][s + shift]),
                                       int(features.piece_end[n][e + shift])))
    na_best = {}
    if version == 2:
        for w, logit in enumerate(np.asarray(outputs["impossible_logits"], np.float64)):
            n = inputs["example_index"][w]
            na_best[n] = min(na_best.get(n, np.inf), float(logit))
    answers, na_scores, nbest = {}, {}, {}
    for n, example in enumerate(examples):
        best = {}
        # Stable sort: equal scores keep window, beam-start, beam-end order (as serving).
        for score, start, end in sorted(per_example[n], key=lambda c: -c[0]):
            best.setdefault((start, end), score)
            if len(best) == n_best_size:
                break
        spans = list(best.items())
        scores = np.array([score for _, score in spans])
        probabilities = np.exp(scores - scores.max()) if spans else scores
        probabilities = probabilities / probabilities.sum() if spans else probabilities
        nbest[example.qas_id] = [
            {"text": example.context[start:end], "start": start, "end": end, "score": score,
             "probability": float(p)}
            for ((start, end), score), p in zip(spans, probabilities)]
        answers[example.qas_id] = nbest[example.qas_id][0]["text"] if spans else ""
        if version == 2:
            na_scores[example.qas_id] = float(na_best[n])
    return Predictions(answers, na_scores, nbest)
