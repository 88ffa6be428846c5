"""Text -> model inputs for fine-tuning with the real tokenizer: sentence (pair) packing and the
word-level tagging alignment (label on each word's first WordPiece, truncation)."""

import numpy as np
import pytest

from electra_tf.finetune import features
from electra_tf.tokenization import Tokenizer
from tests.electra_tf.finetune.helpers import VOCAB


@pytest.fixture(scope="module")
def tokenizer(vocab_file):
    return Tokenizer(vocab_file)


def ids(*tokens):
    return [VOCAB.index(t) for t in tokens]


def test_encode_texts_pairs(tokenizer):
    arrays = features.encode_texts(tokenizer, ["The movie", "Paris"], ["was GOOD", ""], 8)
    assert arrays["input_ids"].dtype == np.int32
    assert arrays["input_ids"][0].tolist() == ids("[CLS]", "the", "movie", "[SEP]", "was",
                                                  "good", "[SEP]") + [0]
    assert arrays["segment_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 0]
    assert arrays["input_mask"][0].tolist() == [1] * 7 + [0]
    assert arrays["input_ids"][1].tolist() == ids("[CLS]", "paris", "[SEP]", "[SEP]") + [0] * 4


def test_encode_words_labels_on_first_piece(tokenizer):
    arrays, positions = features.encode_words(
        tokenizer, [["Playing", "the", "plays", "\x00"], ["Paris"]], [[5, 6, 7, 8], None], 10)
    # [CLS] play ##ing the play ##s [UNK] [SEP]: a word the cleaner empties still gets a slot.
    assert arrays["input_ids"][0].tolist() == ids(
        "[CLS]", "play", "##ing", "the", "play", "##s", "[UNK]", "[SEP]") + [0, 0]
    assert positions == [[1, 3, 4, 6], [1]]
    assert arrays["label_ids"][0].tolist() == [0, 5, 0, 6, 7, 0, 8, 0, 0, 0]
    assert arrays["label_mask"][0].tolist() == [0, 1, 0, 1, 1, 0, 1, 0, 0, 0]
    # An unlabelled sentence has inputs but no label positions.
    assert arrays["label_mask"][1].sum() == 0
    assert arrays["input_ids"][1][:3].tolist() == ids("[CLS]", "paris", "[SEP]")


def test_encode_words_truncation(tokenizer):
    arrays, positions = features.encode_words(
        tokenizer, [["Playing", "the", "plays", "film"]], [[1, 2, 3, 4]], 6)
    # Room for 4 pieces: "plays" (2 pieces) does not fit, so it and every later word are cut.
    assert arrays["input_ids"][0].tolist() == ids("[CLS]", "play", "##ing", "the", "[SEP]") + [0]
    assert positions == [[1, 3, -1, -1]]
    assert arrays["label_mask"][0].tolist() == [0, 1, 0, 1, 0, 0]
