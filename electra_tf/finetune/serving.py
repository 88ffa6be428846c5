"""The raw-text serving signatures of fine-tuned sentence and tagging models (for the export).

`serving_default` of a classifier returns `probabilities` [batch, C] and `label` [batch]; of a
regressor `score` [batch] (on the task's scale: STS-B's 0-5); of a tagger (no `text_b`) `tokens`
[batch, W], the whitespace-separated words of the text, `tags` [batch, W] and `tag_probability`
[batch, W] (padding: "" and 0). The text is packed exactly as for fine-tuning
(electra_tf/serving.py), and the `encode` signatures are kept.
"""

import tensorflow as tf

from electra_tf import serving, tokenization
from electra_tf.finetune import features as features_lib


class TaskServing(serving.ServingModule):
    """A fine-tuned sentence (pair) classifier (`labels` given) or regressor."""

    def __init__(self, tokenizer, task_model, max_seq_length: int, labels: list | None,
                 label_scale: float = 1.0):
        super().__init__(tokenizer, max_seq_length, encoder=task_model.backbone,
                         task_model=task_model)
        self.labels = tf.constant(labels or [], tf.string)
        self.regression = not labels
        self.label_scale = float(label_scale)

    def outputs(self, features: dict) -> dict:
        # Without labels in the features the fine-tuning model returns only its predictions.
        outputs = self.keras.task_model(features, training=False)
        if self.regression:
            return {"score": outputs["predictions"] * self.label_scale}
        probabilities = outputs["probabilities"]
        return {"probabilities": probabilities,
                "label": tf.gather(self.labels, tf.argmax(probabilities, axis=-1))}


class TaggingServing(serving.ServingModule):
    """A fine-tuned tagger: one tag per whitespace-separated word of `text`.

    Words are laid out exactly as fine-tuning lays out CoNLL words (features.encode_words): each
    word tokenized on its own (a word without WordPieces takes one [UNK]), the tag read at its
    first WordPiece, and words that no longer fit max_seq_length get `cut_off_tag` (the
    fine-tuning predictions' `features.cut_off_tag`) with probability 0.
    """

    def __init__(self, tokenizer, task_model, max_seq_length: int, labels: list):
        super().__init__(tokenizer, max_seq_length, encoder=task_model.backbone,
                         task_model=task_model)
        self.labels = tf.constant(labels, tf.string)
        self.fallback = tf.constant(features_lib.cut_off_tag(labels), tf.string)

    @tf.function(input_signature=[serving.TEXT])
    def tag(self, text):
        tok = self.tokenizer
        words = tf.strings.split(text)
        pieces = tok.tokenize(words.flat_values)
        pieceless = tf.equal(pieces.row_lengths(), 0)
        unk = tf.fill([tf.size(pieceless), 1], tf.constant(tok.unk_id, pieces.dtype))
        pieces = tf.concat([pieces, tf.ragged.boolean_mask(unk, pieceless[:, None])], axis=1)
        # Position just past each word: [CLS] + the pieces of the row's words up to it.
        counts = pieces.row_lengths()
        running = tf.cumsum(counts)
        before_row = tf.gather(tf.concat([[0], running], 0), words.row_starts())
        ends = 1 + running - tf.gather(before_row, words.value_rowids())
        fits = ends <= self._max_seq_length - 1
        kept = tf.ragged.boolean_mask(words.with_flat_values(pieces),
                                      words.with_flat_values(fits))
        packed = serving.trim(tokenization.pack_segments(
            kept.merge_dims(1, 2), None, self._max_seq_length, tok.cls_id, tok.sep_id))
        probabilities = self.outputs(packed)["probabilities"]
        first_piece = tf.stack([words.value_rowids(), tf.where(fits, ends - counts, 0)], axis=1)
        at_words = tf.gather_nd(probabilities, first_piece)
        tags = tf.where(fits, tf.gather(self.labels, tf.argmax(at_words, axis=-1)), self.fallback)
        best = tf.where(fits, tf.reduce_max(at_words, axis=-1), 0.0)
        return {"tokens": words.to_tensor(""),
                "tags": words.with_flat_values(tags).to_tensor(""),
                "tag_probability": words.with_flat_values(best).to_tensor(0.0)}

    def outputs(self, features: dict) -> dict:
        """Per-WordPiece tag probabilities of packed features (also behind the base class's
        text/text_b function)."""
        return {"probabilities": self.keras.task_model(features, training=False)["probabilities"]}

    def signatures(self) -> dict:
        return {**super().signatures(), "serving_default": self.tag}
