"""The training loop's checkpoints: save, resume, SIGTERM, weights-only restore.

The recipe's TF1 Estimator saved model + optimizer slots + global_step every N steps and resumed
from model_dir; the input position was lost on restart. Here a checkpoint also holds the input
iterator, so a resumed run continues the same data stream (and, with stateless randomness keyed by
step and example, the very same computation). Nothing here knows which model it saves: what a
checkpoint holds and which architecture it must match is electra_tf.checkpoint_io's job.
"""

import signal
import threading

import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.io import first_line


def checkpoint_directory(model_dir: str, chief: bool, worker: int) -> str:
    """Where this process keeps its checkpoints.

    Every multi-worker process must take part in saving. Non-chief workers keep theirs (identical
    weights, but their own input iterator position) under model_dir/workers/worker-<i>, so each
    worker resumes its own shard of the input where it stopped.
    """
    return model_dir if chief else io.join(model_dir, "workers", f"worker-{worker}")


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
        own = io.join(self._directory, io.basename(path))
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
