"""The serving signatures every exported ELECTRA model shares (TF Serving's Predict API).

The recipe has no export; this is the base the SavedModel writer (export/saved_model.py) wraps
around a model. Raw text is tokenized in the graph by the data stage's own `Tokenizer` (the
recipe's BERT normalization + WordPiece, vocabulary shipped as a SavedModel asset) and packed
exactly like the fine-tuning features ([CLS] A [SEP] (B [SEP]), longer segment truncated first),
so a served model sees what it was trained on. Signatures:

- `serving_default`: `text` [batch] string, optional `text_b` [batch] (a signature default: an
  empty batch means "single texts"). Outputs depend on the head; here the pre-trained ones:
  discriminator -> `tokens` [batch, T] and `replaced_probability` [batch, T] (the recipe's
  sigmoid of the discriminator logit per token); generator -> every literal "[MASK]" in the text
  filled with the top-k tokens and their probabilities. Each fine-tuning task kind brings its
  own (finetune/serving.py, finetune/squad/serving.py).
  T is the longest packed input of the batch (at most max_seq_length); padding columns hold ""
  and probability 0. Padding does not change the other columns (the -10000 mask adder), so
  trimming it only saves time.
- `encode` (int32) and `encode_int64`: `input_ids`, `input_mask`, `segment_ids` [batch, seq] ->
  `sequence_output` [batch, seq, H] and `cls` [batch, H] (the recipe has no pooler).

The vocabulary file also travels as a SavedModel asset (`vocab_file`, for clients that detokenize
or build `encode` inputs). The tokenizer replaces invalid UTF-8 by U+FFFD (which its cleaning
drops), empty text packs to [CLS] [SEP] and long text is truncated by the packing: no input
string can fail a request.
"""

import types

import tensorflow as tf

from electra_tf import tokenization
from electra_tf.data import INPUT_KEYS

MASK_TOKEN = "[MASK]"
TEXT = tf.TensorSpec([None], tf.string, name="text")
TEXT_B = tf.TensorSpec([None], tf.string, name="text_b")


def _encode_specs(dtype):
    return [tf.TensorSpec([None, None], dtype, name=name) for name in INPUT_KEYS]


def trim(features: dict) -> dict:
    """Packed features cut to the longest input of the batch (padding never changes outputs)."""
    length = tf.maximum(tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1)), 1)
    return {name: tf.ensure_shape(value[:, :length], [None, None])
            for name, value in features.items()}


class ServingModule(tf.Module):
    """Tokenizer + the discriminator-style encoder + one output head, with the signatures.

    Subclasses pass their Keras layers as keyword arguments (reachable as `self.keras.<name>`,
    `encoder` always) and implement `outputs(features) -> dict` (the raw-text signature's
    outputs); the generator also overrides `tokenize` to keep literal [MASK] tokens.

    The Keras objects are deliberately NOT tracked by the SavedModel; their underlying
    tf.Variables are (`model_variables`). Keras 3 saves a tracked keras.Variable as a second
    tf.Variable copy, and TensorFlow 1-style loaders (TF Serving, `saved_model_cli run`) then
    restore that copy while the functions read the original: "Could not find variable".
    """

    def __init__(self, tokenizer: "tokenization.Tokenizer", max_seq_length: int, **layers):
        super().__init__(name="electra_serving")
        self.tokenizer = tokenizer
        self.vocab_file = tf.saved_model.Asset(tokenizer.vocab_file)
        # A plain namespace is opaque to TensorFlow's object tracking (see the class docstring).
        self.keras = types.SimpleNamespace(**layers)
        unique = {id(v): v for layer in layers.values() for v in layer.variables}
        self.model_variables = [v.value for v in unique.values()]
        self.max_seq_length = tf.constant(max_seq_length, tf.int32)
        self._max_seq_length = max_seq_length
        # The default of the optional `text_b` input: an empty batch, "no second segment". Made
        # here, not at import, so importing this module does not initialize TensorFlow's
        # devices (a fine-tuning run splits the CPU into logical devices first).
        no_pair = tf.constant([], tf.string)

        @tf.function(input_signature=[TEXT, TEXT_B])
        def serve(text, text_b=no_pair):
            return self.outputs(self.pack(text, text_b))

        self.serve = serve

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenizer.tokenize(text)

    def pack(self, text: tf.Tensor, text_b: tf.Tensor) -> dict:
        """Dense int32 features of the batch, trimmed to its longest packed input."""
        ids_a = self.tokenize(text)
        tok = self.tokenizer

        def single():
            return tokenization.pack_segments(ids_a, None, self._max_seq_length,
                                              tok.cls_id, tok.sep_id)

        def pairs():
            ids_b = self.tokenize(text_b)
            return tokenization.pack_segments(ids_a, ids_b, self._max_seq_length,
                                              tok.cls_id, tok.sep_id)

        tf.debugging.assert_equal(
            tf.logical_or(tf.equal(tf.size(text_b), 0), tf.equal(tf.size(text_b), tf.size(text))),
            True, message="text_b must be empty or have one entry per text")
        return trim(tf.cond(tf.size(text_b) > 0, pairs, single))

    def tokens(self, features: dict) -> tf.Tensor:
        """WordPiece strings of the packed ids, "" at padding."""
        return tf.where(features["input_mask"] > 0,
                        self.tokenizer.id_to_token(features["input_ids"]), "")


    def _encode(self, input_ids, input_mask, segment_ids):
        features = {"input_ids": tf.cast(input_ids, tf.int32),
                    "input_mask": tf.cast(input_mask, tf.int32),
                    "segment_ids": tf.cast(segment_ids, tf.int32)}
        sequence_output = self.keras.encoder(features, training=False)
        return {"sequence_output": sequence_output, "cls": sequence_output[:, 0]}

    @tf.function(input_signature=_encode_specs(tf.int32))
    def encode(self, input_ids, input_mask, segment_ids):
        return self._encode(input_ids, input_mask, segment_ids)

    @tf.function(input_signature=_encode_specs(tf.int64))
    def encode_int64(self, input_ids, input_mask, segment_ids):
        return self._encode(input_ids, input_mask, segment_ids)

    def signatures(self) -> dict:
        return {"serving_default": self.serve, "encode": self.encode,
                "encode_int64": self.encode_int64}


class DiscriminatorServing(ServingModule):
    """Replaced-token detection: the probability that each token was replaced."""

    def __init__(self, tokenizer, discriminator, discriminator_head, max_seq_length: int):
        super().__init__(tokenizer, max_seq_length, encoder=discriminator,
                         head=discriminator_head)

    def outputs(self, features: dict) -> dict:
        logits = self.keras.head(self.keras.encoder(features, training=False))
        real = tf.cast(features["input_mask"], tf.float32)
        return {"tokens": self.tokens(features),
                "replaced_probability": tf.sigmoid(logits) * real}


class GeneratorServing(ServingModule):
    """Masked-LM filling: top-k tokens and probabilities at every literal [MASK] of the text."""

    def __init__(self, tokenizer, discriminator, generator, generator_head, max_seq_length: int,
                 top_k: int):
        super().__init__(tokenizer, max_seq_length, encoder=discriminator, generator=generator,
                         head=generator_head)
        self.top_k = top_k

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        # The BERT tokenizer would split "[MASK]" into "[", "mask", "]": split the text on the
        # literal first, tokenize the pieces and put a [MASK] id between neighbouring pieces.
        pieces = tf.strings.split(text, sep=MASK_TOKEN)
        piece_ids = self.tokenizer.tokenize(pieces.flat_values)
        mask_column = tf.fill([tf.shape(pieces.flat_values)[0], 1],
                              tf.constant(self.tokenizer.mask_id, piece_ids.dtype))
        with_masks = tf.concat([piece_ids, mask_column], axis=1)
        per_text = tf.RaggedTensor.from_row_splits(with_masks, pieces.row_splits)
        merged = per_text.merge_dims(1, 2)
        # Every piece got a trailing [MASK]; the last piece of each text must not have one.
        return merged[:, :-1]

    def outputs(self, features: dict) -> dict:
        generator = self.keras.generator
        hidden = generator(features, training=False)
        masked = tf.logical_and(tf.equal(features["input_ids"], self.tokenizer.mask_id),
                                features["input_mask"] > 0)
        positions = tf.where(masked)
        # The tied output layer is [*, V]: evaluate it only at the masked positions.
        at_masks = tf.gather_nd(hidden, positions)[tf.newaxis]
        logits = self.keras.head(at_masks, generator.embeddings.word_embeddings)[0]
        top_probabilities, top_ids = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=self.top_k)
        shape = tf.concat([tf.shape(masked, out_type=tf.int64), [self.top_k]], axis=0)
        top_tokens = tf.scatter_nd(positions, self.tokenizer.id_to_token(top_ids), shape)
        top_probabilities = tf.scatter_nd(positions, top_probabilities, shape)
        tokens = tf.where(masked, top_tokens[:, :, 0], self.tokens(features))
        return {"tokens": tokens, "masked": masked, "top_k_tokens": top_tokens,
                "top_k_probabilities": top_probabilities}
