"""The serving signature of a SQuAD model (the recipe's extractive QA, exported for TF Serving).

`serving_default` takes `question` and `context` strings [batch] and returns, per question, `answer`
(the exact substring of the context; "" when unanswerable), its `start` / `end` character offsets in
the context (code points, end exclusive; -1 when unanswerable), `score` (start + end log-probability
of the span, the reference's beam decoding) and `no_answer_score` (2.0 models: the lowest
impossibility logit over the windows; the answer is "" when it exceeds the threshold chosen on dev).
Tokenization, sliding windows, max-context and the candidate filter are the very functions
fine-tuning uses (squad/features.py, squad/postprocess.py), so a served answer is the fine-tuning
prediction. The `encode` signatures of electra_tf/serving.py are kept.
"""


import tensorflow as tf

from electra_tf import serving
from electra_tf.data import INPUT_KEYS
from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import postprocess

_QUESTION = tf.TensorSpec([None], tf.string, name="question")
_CONTEXT = tf.TensorSpec([None], tf.string, name="context")


class QAServing(serving.ServingModule):
    """Tokenizer + fine-tuned SpanModel + the QA signature."""

    def __init__(self, tokenizer, span_model, metadata: dict, max_seq_length: int,
                 null_threshold: float | None = None):
        # Variables must exist before the base class collects them: one call builds them all.
        dummy = tf.zeros([1, max_seq_length], tf.int32)
        span_model(dict.fromkeys(INPUT_KEYS, dummy))
        super().__init__(tokenizer, max_seq_length, encoder=span_model.backbone,
                         span_model=span_model)
        self.window = squad_features.WindowConfig(
            max_seq_length=max_seq_length, doc_stride=int(metadata["doc_stride"]),
            max_query_length=int(metadata["max_query_length"]))
        self.window.validate()
        self.max_answer_length = int(metadata["max_answer_length"])
        self.version = int(metadata.get("version", 2))
        self.null_threshold = tf.constant(
            0.0 if null_threshold is None else null_threshold, tf.float32)

    @tf.function(input_signature=[_QUESTION, _CONTEXT])
    def answer(self, question, context):
        tok = self.tokenizer
        tf.debugging.assert_equal(tf.size(question), tf.size(context),
                                  message="question and context need one entry each")
        count = tf.size(context, out_type=tf.int64)
        piece_ids, piece_start, piece_end = squad_features.context_pieces(tok, context)
        windows = squad_features.build_windows(tok.tokenize(question), piece_ids, self.window,
                                               tok.cls_id, tok.sep_id)
        outputs = self.keras.span_model({key: windows[key] for key in INPUT_KEYS},
                                        training=False)
        position = (tf.range(self.window.max_seq_length, dtype=tf.int64)[None, :]
                    - windows["context_offset"][:, None])
        in_context = tf.logical_and(position >= 0,
                                    position < windows["window_length"][:, None])
        candidates, starts, ends = postprocess.joint_candidates(
            outputs["start_top_log_probs"], outputs["start_top_index"],
            outputs["end_top_log_probs"], outputs["end_top_index"], windows["max_context"],
            in_context, self.max_answer_length)
        # The best candidate of each window (the first of equal ones, as postprocess).
        top = tf.argmax(candidates, axis=1, output_type=tf.int32)
        scores = tf.gather(candidates, top, batch_dims=1)
        starts = tf.gather(starts, top, batch_dims=1)[:, None]
        ends = tf.gather(ends, top, batch_dims=1)[:, None]
        example = windows["example_index"]
        # The best window of each question: highest span score, the first one on ties.
        best = tf.math.unsorted_segment_max(scores, example, count)
        window_index = tf.range(tf.size(example, out_type=tf.int64))
        chosen = tf.math.unsorted_segment_min(
            tf.where(tf.equal(scores, tf.gather(best, example)), window_index,
                     tf.int64.max), example, count)
        chosen = tf.minimum(chosen, tf.maximum(tf.size(example, out_type=tf.int64) - 1, 0))
        first_piece = (tf.gather(piece_ids.row_starts(), example) + windows["window_start"]
                       - windows["context_offset"])
        flat_start = tf.gather(first_piece, chosen) + tf.cast(tf.gather(starts[:, 0], chosen),
                                                              tf.int64)
        flat_end = tf.gather(first_piece, chosen) + tf.cast(tf.gather(ends[:, 0], chosen),
                                                            tf.int64)
        has_span = best > -1e8
        # A question without any span (e.g. an empty context) reads the sentinel -1 appended
        # here, so gathering never leaves the piece tables.
        pieces = tf.size(piece_start.flat_values, out_type=tf.int64)
        sentinel = tf.constant([-1], tf.int64)
        start_char = tf.gather(tf.concat([piece_start.flat_values, sentinel], 0),
                               tf.where(has_span, flat_start, pieces))
        end_char = tf.gather(tf.concat([piece_end.flat_values, sentinel], 0),
                             tf.where(has_span, flat_end, pieces))
        no_answer = tf.math.unsorted_segment_min(
            tf.cast(outputs["impossible_logits"], tf.float32), example, count)
        answered = has_span
        if self.version == 2:
            answered = tf.logical_and(answered, no_answer <= self.null_threshold)
        start_char = tf.where(answered, start_char, -1)
        end_char = tf.where(answered, end_char, -1)
        text = tf.strings.substr(context, tf.maximum(start_char, 0),
                                 tf.maximum(end_char - start_char, 0), unit="UTF8_CHAR")
        return {"answer": tf.where(answered, text, ""), "start": start_char, "end": end_char,
                "score": tf.where(answered, best, 0.0), "no_answer_score": no_answer}

    def outputs(self, features: dict) -> dict:
        """Span logits of one packed window (the base class's text/text_b function)."""
        outputs = self.keras.span_model(features, training=False)
        return {key: outputs[key] for key in
                ("start_top_log_probs", "start_top_index", "end_top_log_probs",
                 "end_top_index", "impossible_logits")}

    def signatures(self) -> dict:
        return {**super().signatures(), "serving_default": self.answer}
