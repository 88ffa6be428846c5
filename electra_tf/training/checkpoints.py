"""Checkpoints for pre-training and fine-tuning: save, resume, SIGTERM, --init_checkpoint.

The recipe's TF1 Estimator saved model + optimizer slots + global_step every N steps and resumed
from model_dir; the input position was lost on restart. Here a checkpoint also holds the input
iterator, so a resumed run continues the same data stream (and, with stateless randomness keyed by
step and example, the very same computation). `config.json` beside the checkpoints records the
model's sizes, so a model_dir is never silently reused for a different model.
"""

import json
import os
import signal
import threading

import tensorflow as tf

from electra_tf.cli import UserError
from electra_tf.data import first_line
from electra_tf.interop import tf1_checkpoint

CONFIG_FILE = "config.json"


def checkpoint_directory(model_dir: str, chief: bool, worker: int) -> str:
    """Where this process keeps its checkpoints.

    Every multi-worker process must take part in saving. Non-chief workers keep theirs (identical
    weights, but their own input iterator position) under model_dir/workers/worker-<i>, so each
    worker resumes its own shard of the input where it stopped.
    """
    return model_dir if chief else os.path.join(model_dir, "workers", f"worker-{worker}")


class CheckpointKeeper:
    """tf.train.CheckpointManager over model, optimizer, step and the input iterator.

    Model, optimizer and step are always restored from the newest checkpoint in
    `state_directory` (the chief's model_dir), so all workers resume at the same step. The
    iterator is stored under `iterator_key`, which names the input layout ("iterator" for one
    input pipeline, "iterator_<i>_of_<n>" for worker i of n), and is restored from this process's
    own checkpoint of that same step. When there is none (say, 2 workers resuming a one-machine
    run), everything but the input position is restored: a stream cannot continue on another
    sharding, so it restarts from its seed.
    """

    def __init__(self, directory: str, keep_checkpoint_max: int, iterator_key: str = "iterator",
                 iterator=None, state_directory: str = "", **objects):
        self._state = tf.train.Checkpoint(**objects)
        self._state_directory = state_directory or directory
        self._directory = directory
        self._iterator_key = iterator_key
        self._iterator = iterator
        if iterator is not None:
            objects[iterator_key] = iterator
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=keep_checkpoint_max or None)

    @property
    def latest(self) -> str:
        return self.manager.latest_checkpoint

    def restore_latest(self) -> tuple:
        """Restores the newest checkpoint, if any: (path or "", whether the input position was
        restored)."""
        path = tf.train.latest_checkpoint(self._state_directory)
        if not path:
            return "", False
        own = os.path.join(self._directory, os.path.basename(path))
        try:
            self._state.restore(path).expect_partial().assert_existing_objects_matched()
            has_iterator = (self._iterator is not None and tf.io.gfile.exists(own + ".index")
                            and any(name.startswith(self._iterator_key + "/")
                                    for name, _ in tf.train.list_variables(own)))
            if has_iterator:
                tf.train.Checkpoint(**{self._iterator_key: self._iterator}).restore(
                    own).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as e:
            raise UserError(f"cannot resume from {path}: {first_line(e)}") from None
        return path, has_iterator

    def save(self, step: int) -> str:
        return self.manager.save(checkpoint_number=step)


def resolve_checkpoint(path: str, flag: str = "--init_checkpoint") -> str:
    """A checkpoint prefix from a prefix or a directory holding checkpoints."""
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if not latest:
            raise UserError(f"{flag}={path}: directory holds no checkpoint")
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise UserError(f"{flag}={path}: no such checkpoint (expected {path}.index "
                        "or a directory with a 'checkpoint' file)")
    return path


def restore_model_weights(model, path: str, flag: str = "--init_checkpoint") -> str:
    """Restores only the model's weights from a checkpoint written by the Trainer, or from a
    checkpoint in the original TF1 layout (electra_tf.interop.tf1_checkpoint.restore_tf1).

    `path` is a checkpoint prefix or a model_dir. Optimizer slots, step and iterator in the
    checkpoint are ignored (the released TF1 checkpoints have none). `model` must be built, and
    is matched against the checkpoint's "model" object: pass the same model class, or any
    trackable whose attributes mirror part of it (e.g. `tf.train.Checkpoint(discriminator=
    backbone)` to take the discriminator of a pre-training checkpoint). Every variable of
    `model` must be found with the same shape. Returns the checkpoint prefix used.
    """
    prefix = resolve_checkpoint(path, flag)
    if tf1_checkpoint.is_tf1_checkpoint(prefix):
        tf1_checkpoint.restore_tf1(model, prefix)
        return prefix
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise UserError(f"{flag}={path}: does not fit this model: "
                        f"{first_line(e)}") from None
    return prefix


def ensure_model_config(model_dir: str, config: dict, write: bool) -> None:
    """Refuses a model_dir whose checkpoints belong to a model with a different config.

    Writes `config.json` (atomically) when `write` (the chief) and there is none or no checkpoint
    yet.
    """
    path = os.path.join(model_dir, CONFIG_FILE)
    has_checkpoint = bool(tf.train.latest_checkpoint(model_dir))
    if tf.io.gfile.exists(path) and has_checkpoint:
        try:
            with tf.io.gfile.GFile(path) as f:
                saved = json.load(f)
        except ValueError as e:
            raise UserError(f"{path}: not valid JSON ({e})") from None
        differing = [f"{k}={saved.get(k)!r} (flags: {config.get(k)!r})"
                     for k in sorted(set(saved) | set(config)) if saved.get(k) != config.get(k)]
        if differing:
            raise UserError(f"--model_dir={model_dir} holds a checkpoint of a different model: "
                            + ", ".join(differing) + "; use a new --model_dir")
        return
    if write:
        tf.io.gfile.makedirs(model_dir)
        tmp = f"{path}.tmp-{os.getpid()}"
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
        tf.io.gfile.rename(tmp, path, overwrite=True)


class StopSignal:
    """Turns SIGTERM into a request to save and stop at the next step boundary."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False
