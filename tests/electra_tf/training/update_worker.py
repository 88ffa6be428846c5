"""One process for test_distribute.py's gradient-contract test (2 logical CPUs, set first).

    python -m tests.electra_tf.training.update_worker --out=PREFIX

For one_device and mirrored (2 replicas), with and without gradient accumulation, takes one
Trainer step with plain SGD (an update proportional to the gradient, unlike Adam's) and a clip
norm small enough to be active, and computes the same step by hand: the gradient of the whole
global batch on one device, clipped to the global norm. Writes PREFIX.npz with, per setting,
the weight deltas of both and the norms.
"""

import argparse
import tempfile

import keras
import numpy as np
import tensorflow as tf

from electra_tf.training import distribute, loop
from tests.electra_tf.training.distributed_worker import GLOBAL_BATCH, VOCAB, input_fn
from tests.electra_tf.training.helpers import TinyContractModel

LEARNING_RATE, CLIP_NORM = 0.5, 0.05


def hand_step(model, accum: int) -> tuple:
    """(-lr * the clipped global gradient, its norm before clipping) of the first step."""
    batches = input_fn(GLOBAL_BATCH // accum, tf.distribute.InputContext()).take(accum)
    grads = None
    for features in batches:
        with tf.GradientTape() as tape:
            out = model(features, training=True, dropout_seed=tf.constant([1, 2]))
            loss = sum(w * s / c for s, c, w in out["losses"].values())
        micro = [tf.convert_to_tensor(g).numpy().astype(np.float64)
                 for g in tape.gradient(loss, model.trainable_variables)]
        grads = micro if grads is None else [a + b for a, b in zip(grads, micro)]
    grads = [g / accum for g in grads]
    norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    return [-LEARNING_RATE * g * min(1.0, CLIP_NORM / norm) for g in grads], norm


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    distribute.split_cpu(2)
    results = {}
    for name in ("one_device", "mirrored"):
        # One strategy per kind: collectives of two MirroredStrategy objects in one process
        # share instance keys and clash.
        strategy = distribute.create_strategy(name)
        for accum in (1, 2):
            keras.utils.set_random_seed(3)
            with tempfile.TemporaryDirectory() as model_dir:
                trainer = loop.Trainer(
                    strategy=strategy,
                    model_fn=lambda: TinyContractModel(vocab_size=VOCAB),
                    optimizer_fn=lambda: keras.optimizers.SGD(LEARNING_RATE),
                    train_input_fn=input_fn, model_dir=model_dir,
                    train_batch_size=GLOBAL_BATCH, grad_accum_steps=accum,
                    clip_norm=CLIP_NORM, steps_per_loop=1, save_checkpoints_steps=0,
                    log_fn=lambda line: None)
                before = [v.numpy() for v in trainer.model.trainable_variables]
                expected, norm = hand_step(trainer.model, accum)
                metrics = trainer.run_steps(1)
                after = [v.numpy() for v in trainer.model.trainable_variables]
            key = f"{name}_{accum}"
            results[f"{key}/replicas"] = trainer.strategy.num_replicas_in_sync
            results[f"{key}/norm"] = norm
            results[f"{key}/reported_norm"] = metrics["gradient_norm"]
            for i, (a, b, e) in enumerate(zip(after, before, expected)):
                results[f"{key}/delta_{i}"] = a - b
                results[f"{key}/expected_{i}"] = e
    np.savez(args.out + ".npz", **results)


if __name__ == "__main__":
    main()
