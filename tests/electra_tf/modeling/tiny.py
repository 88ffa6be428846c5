"""Tiny ELECTRA configurations and synthetic batches shared by the modeling and pre-training
tests (ids follow the BERT vocab layout: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4)."""

import numpy as np
import tensorflow as tf

from electra_tf.config import ModelConfig, ObjectiveConfig

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
FIRST_WORD = 5


def tiny_config(**overrides) -> ModelConfig:
    """E=16, H=32, 2 layers, generator 8 wide (so both towers have embeddings_project)."""
    values = dict(vocab_size=97, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=40,
                  generator_hidden_size=0.25)
    values.update(overrides)
    return ModelConfig(**values)


def tiny_objective(**overrides) -> ObjectiveConfig:
    """Sequences of 32: 4 masked-LM slots per example at the recipe's mask rate."""
    return ObjectiveConfig(**{"max_seq_length": 32, **overrides})


def random_batch(batch: int, seq_length: int, vocab_size: int, seed: int, *,
                 first_index: int = 0, min_length: int = 6) -> dict:
    """Packed examples `[CLS] A [SEP] B [SEP] 0...` of random lengths with random words (some of
    them [MASK] already, which must never be chosen), int32 features + int64 example_index."""
    rng = np.random.default_rng(seed)
    input_ids = np.zeros((batch, seq_length), np.int32)
    input_mask = np.zeros((batch, seq_length), np.int32)
    segment_ids = np.zeros((batch, seq_length), np.int32)
    for row in range(batch):
        length = int(rng.integers(min_length, seq_length + 1))
        words = rng.integers(FIRST_WORD, vocab_size, length)
        words[rng.random(length) < 0.05] = MASK
        split = int(rng.integers(2, length - 1))
        words[0], words[split], words[length - 1] = CLS, SEP, SEP
        input_ids[row, :length] = words
        input_mask[row, :length] = 1
        segment_ids[row, split + 1:length] = 1
    return {"input_ids": tf.constant(input_ids), "input_mask": tf.constant(input_mask),
            "segment_ids": tf.constant(segment_ids),
            "example_index": tf.range(first_index, first_index + batch, dtype=tf.int64)}


def take_rows(features: dict, rows) -> dict:
    return {name: tf.gather(value, rows) for name, value in features.items()}
