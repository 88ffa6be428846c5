"""Shared fixtures for the training tests: TFRecord shards and a tiny model of the loop contract.

The stand-in model follows the contract of electra_tf/training/loop.py with two loss terms whose
counts differ per example (so global-count normalization matters), metrics, an AUC and dropout
keyed by dropout_seed; it keeps the loop tests independent of the ELECTRA objective's size.
"""

import json
import os
import socket

import keras
import numpy as np
import tensorflow as tf


def write_shards(directory, num_files=2, examples_per_file=64, seq_length=16, vocab_size=50,
                 seed=0, info=True):
    """Writes pretrain_data.tfrecord-XXXXX-of-YYYYY shards of random examples; returns the glob."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num_files):
        path = os.path.join(directory, f"pretrain_data.tfrecord-{i:05d}-of-{num_files:05d}")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(examples_per_file):
                length = int(rng.integers(5, seq_length + 1))
                ids = np.zeros(seq_length, np.int64)
                ids[0], ids[length - 1] = 2, 3
                ids[1:length - 1] = rng.integers(5, vocab_size, length - 2)
                mask = (np.arange(seq_length) < length).astype(np.int64)
                segments = np.zeros(seq_length, np.int64)
                feature = {
                    "input_ids": ids, "input_mask": mask, "segment_ids": segments}
                example = tf.train.Example(features=tf.train.Features(feature={
                    k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                    for k, v in feature.items()}))
                writer.write(example.SerializeToString())
    if info:
        with open(os.path.join(directory, "dataset_info.json"), "w") as f:
            json.dump({"max_seq_length": seq_length, "vocab_size": vocab_size,
                       "examples": num_files * examples_per_file}, f)
    return os.path.join(directory, "pretrain_data.tfrecord-*")


class TinyContractModel(keras.Model):
    """Predicts each token from itself (loss "lm", on every third real position) and whether it
    is even (loss "parity", every real position), returning the loop contract's dict.

    nan_after: the "lm" loss becomes NaN for batches holding an example_index >= nan_after.
    overflow_at: the "lm" loss is multiplied by 1e30 (finite in float32) for the batch holding
    that example_index, so under mixed_float16 its float16 gradients overflow.
    """

    def __init__(self, vocab_size=50, hidden=8, dropout=0.0, nan_after=None, overflow_at=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.dropout = dropout
        self.nan_after = nan_after
        self.overflow_at = overflow_at
        self.embed = keras.layers.Embedding(vocab_size, hidden, name="embed")
        self.hidden = keras.layers.Dense(hidden, activation="gelu", name="hidden")
        self.lm = keras.layers.Dense(vocab_size, name="lm")
        self.parity = keras.layers.Dense(1, name="parity")

    def call(self, features, training=False, dropout_seed=None):
        ids = features["input_ids"]
        mask = tf.cast(features["input_mask"], tf.float32)
        h = self.hidden(self.embed(ids))
        if training and self.dropout:
            h = tf.nn.experimental.stateless_dropout(h, self.dropout, seed=dropout_seed)
        h = tf.cast(h, tf.float32)
        positions = tf.range(tf.shape(ids)[1])
        lm_weight = mask * tf.cast(positions % 3 == 0, tf.float32)[None]
        logits = tf.cast(self.lm(h), tf.float32)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
        parity_logits = tf.cast(self.parity(h), tf.float32)[..., 0]
        labels = tf.cast(ids % 2 == 0, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=parity_logits)
        probs = tf.sigmoid(parity_logits)
        lm_sum = tf.reduce_sum(nll * lm_weight)
        if self.nan_after is not None:
            # A loss that turns NaN from a known example on: the divergence tests' trigger.
            late = tf.reduce_max(features["example_index"]) >= self.nan_after
            lm_sum = tf.where(late, tf.constant(float("nan")), lm_sum)
        if self.overflow_at is not None:
            hit = tf.reduce_any(tf.equal(features["example_index"], self.overflow_at))
            lm_sum = lm_sum * tf.where(hit, 1e30, 1.0)
        return {
            "losses": {"lm": (lm_sum, tf.reduce_sum(lm_weight), 1.0),
                       "parity": (tf.reduce_sum(bce * mask), tf.reduce_sum(mask), 2.0)},
            "metrics": {"lm_accuracy": (tf.reduce_sum(correct * lm_weight),
                                        tf.reduce_sum(lm_weight))},
            "auc": {"parity_auc": (labels, probs, mask)},
            "parity_probs": probs,
        }


def write_vocab(path, vocab_size=50):
    """A vocab.txt whose special ids match write_shards: [PAD] 0, [CLS] 2, [SEP] 3, [MASK] 4."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"w{i}" for i in range(len(tokens), vocab_size)]
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return path


def free_ports(n):
    """n free TCP ports on localhost (for TF_CONFIG clusters of local processes)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
