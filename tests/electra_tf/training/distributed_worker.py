"""One training process for test_distribute.py: a tiny ELECTRA under a given strategy.

    python -m tests.electra_tf.training.distributed_worker --strategy=S --model_dir=D \
        --steps=N --out=PREFIX [--cpu_devices=2] [--optimizer=sgd] [--grad_accum_steps=2]

Trains the tiny model (dropout 0, so the random streams of different replica counts cannot
differ) on a fixed in-memory stream of global batches with the recipe's optimizer (AdamW without
bias correction, the Trainer's clipping at global norm 1.0) or plain SGD, and writes PREFIX.json
(step it started from, metrics of its first step) and PREFIX.npz (weights at start and at the
end, and the optimizer's Adam moments at the end). Every input pipeline yields exactly its rows
of each global batch, so all strategies see the same batches.
"""

import json

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from electra_tf.config import ModelConfig, ObjectiveConfig
from electra_tf.pretraining.objective import ElectraPretrainer
from electra_tf.training import distribute, loop, optimization

flags.DEFINE_string("strategy", "one_device", "Strategy.")
flags.DEFINE_integer("cpu_devices", 0, "Logical CPU devices.")
flags.DEFINE_string("model_dir", None, "Model directory.")
flags.DEFINE_integer("steps", 1, "Train to this step.")
flags.DEFINE_string("out", None, "Output prefix.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "sgd"], "The recipe's AdamW, or SGD(0.1).")
flags.DEFINE_integer("grad_accum_steps", 1, "Micro-batches per step.")
flags.DEFINE_integer("batch", 8, "Global batch size.")
flags.DEFINE_boolean("equal_lengths", False, "Every example has the same length (so every "
                     "micro-batch has the same token and mask counts).")
FLAGS = flags.FLAGS

SEQ, VOCAB, GLOBAL_BATCH, EXAMPLES = 16, 50, 8, 64
CONFIG = ModelConfig(
    vocab_size=VOCAB, embedding_size=8, hidden_size=16, num_hidden_layers=1,
    num_attention_heads=1, intermediate_size=32, hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0, generator_hidden_size=0.5, max_position_embeddings=SEQ)
OBJECTIVE = ObjectiveConfig(max_seq_length=SEQ)
EQUAL_LENGTHS = False  # --equal_lengths (update_worker.py imports input_fn without flags)


def examples():
    rng = np.random.default_rng(0)
    lengths = rng.integers(6, SEQ + 1, EXAMPLES)
    if EQUAL_LENGTHS:
        lengths[:] = SEQ - 2
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, VOCAB, (EXAMPLES, SEQ)).astype(np.int32) * mask
    ids[:, 0] = 2
    ids[np.arange(EXAMPLES), lengths - 1] = 3
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def input_fn(global_batch, context, start_batch=0):
    rows = global_batch // context.num_input_pipelines
    offset = context.input_pipeline_id * rows
    dataset = tf.data.Dataset.from_tensor_slices(examples()).repeat().batch(
        global_batch, drop_remainder=True).skip(start_batch)

    def mine(number, batch):
        batch = {k: v[offset:offset + rows] for k, v in batch.items()}
        batch["example_index"] = number * global_batch + offset + tf.range(rows, dtype=tf.int64)
        return batch

    return dataset.enumerate(start=start_batch).map(mine)


def main(argv):
    global EQUAL_LENGTHS
    EQUAL_LENGTHS = FLAGS.equal_lengths
    strategy = distribute.create_strategy(FLAGS.strategy, cpu_devices=FLAGS.cpu_devices)
    keras.utils.set_random_seed(3)
    trainer = loop.Trainer(
        strategy=strategy,
        model_fn=lambda: ElectraPretrainer(CONFIG, OBJECTIVE, seed=7, mask_id=4, cls_id=2,
                                           sep_id=3),
        # Plain SGD: a second gradient sum by the optimizer would show in the update. AdamW's
        # update is nearly blind to the gradient's scale, but its first moment is not.
        optimizer_fn=lambda: (keras.optimizers.SGD(0.1) if FLAGS.optimizer == "sgd" else
                              optimization.create_optimizer("adamw", 1e-2, 100, 0)),
        train_input_fn=input_fn, model_dir=FLAGS.model_dir, train_batch_size=FLAGS.batch,
        grad_accum_steps=FLAGS.grad_accum_steps,
        seed=3, steps_per_loop=1, save_checkpoints_steps=1, log_fn=lambda line: None)
    start = {v.path: v.numpy() for v in trainer.model.trainable_variables}
    started = int(trainer.step.numpy())
    result = trainer.train(FLAGS.steps)
    if distribute.is_chief(strategy):
        end = {v.path: v.numpy() for v in trainer.model.trainable_variables}
        moments = {v.path: v.numpy() for v in trainer.optimizer.variables
                   if v.path.endswith(("_adam_m", "_adam_v"))}
        np.savez(FLAGS.out + ".npz", **{"start/" + k: v for k, v in start.items()},
                 **{"end/" + k: v for k, v in end.items()},
                 **{"slot/" + k: v for k, v in moments.items()})
        with open(FLAGS.out + ".json", "w") as f:
            json.dump({"started_at": started, "step": result.step,
                       "first": {k: float(v) for k, v in result.train_metrics.items()},
                       "replicas": strategy.num_replicas_in_sync}, f)


if __name__ == "__main__":
    app.run(main)
