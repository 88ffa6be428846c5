"""One training process for test_distribute.py: a tiny ELECTRA under a given strategy.

    python -m tests.electra_tf.training.distributed_worker --strategy=S --model_dir=D \
        --steps=N --out=PREFIX [--cpu_devices=2]

Trains the tiny model (dropout 0, so the random streams of different replica counts cannot
differ) on a fixed in-memory stream of global batches, and writes PREFIX.json (step it started
from, metrics of its first step) and PREFIX.npz (weights at start and at the end). Every input
pipeline yields exactly its rows of each global batch, so all strategies see the same batches.
"""

import json

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from electra_tf.config import ModelConfig, ObjectiveConfig
from electra_tf.pretraining.objective import ElectraPretrainer
from electra_tf.training import distribute, loop

flags.DEFINE_string("strategy", "one_device", "Strategy.")
flags.DEFINE_integer("cpu_devices", 0, "Logical CPU devices.")
flags.DEFINE_string("model_dir", None, "Model directory.")
flags.DEFINE_integer("steps", 1, "Train to this step.")
flags.DEFINE_string("out", None, "Output prefix.")
FLAGS = flags.FLAGS

SEQ, VOCAB, GLOBAL_BATCH, EXAMPLES = 16, 50, 8, 64
CONFIG = ModelConfig(
    vocab_size=VOCAB, embedding_size=8, hidden_size=16, num_hidden_layers=1,
    num_attention_heads=1, intermediate_size=32, hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, generator_hidden_size=0.5, max_position_embeddings=SEQ)
OBJECTIVE = ObjectiveConfig(max_seq_length=SEQ)


def examples():
    rng = np.random.default_rng(0)
    lengths = rng.integers(6, SEQ + 1, EXAMPLES)
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, VOCAB, (EXAMPLES, SEQ)).astype(np.int32) * mask
    ids[:, 0] = 2
    ids[np.arange(EXAMPLES), lengths - 1] = 3
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def input_fn(global_batch, context):
    rows = global_batch // context.num_input_pipelines
    offset = context.input_pipeline_id * rows
    dataset = tf.data.Dataset.from_tensor_slices(examples()).repeat().batch(
        global_batch, drop_remainder=True)

    def mine(number, batch):
        batch = {k: v[offset:offset + rows] for k, v in batch.items()}
        batch["example_index"] = number * global_batch + offset + tf.range(rows, dtype=tf.int64)
        return batch

    return dataset.enumerate().map(mine)


def main(argv):
    strategy = distribute.create_strategy(FLAGS.strategy, cpu_devices=FLAGS.cpu_devices)
    keras.utils.set_random_seed(3)
    trainer = loop.Trainer(
        strategy=strategy,
        model_fn=lambda: ElectraPretrainer(CONFIG, OBJECTIVE, seed=7, mask_id=4, cls_id=2,
                                           sep_id=3),
        # Plain SGD: a second gradient sum by the optimizer would show in the update.
        optimizer_fn=lambda: keras.optimizers.SGD(0.1),
        train_input_fn=input_fn, model_dir=FLAGS.model_dir, train_batch_size=GLOBAL_BATCH,
        seed=3, steps_per_loop=1, save_checkpoints_steps=1, log_fn=lambda line: None)
    start = {v.path: v.numpy() for v in trainer.model.trainable_variables}
    started = int(trainer.step.numpy())
    result = trainer.train(FLAGS.steps)
    if distribute.is_chief(strategy):
        end = {v.path: v.numpy() for v in trainer.model.trainable_variables}
        np.savez(FLAGS.out + ".npz", **{"start/" + k: v for k, v in start.items()},
                 **{"end/" + k: v for k, v in end.items()})
        with open(FLAGS.out + ".json", "w") as f:
            json.dump({"started_at": started, "step": result.step,
                       "first": {k: float(v) for k, v in result.train_metrics.items()},
                       "replicas": strategy.num_replicas_in_sync}, f)


if __name__ == "__main__":
    app.run(main)
