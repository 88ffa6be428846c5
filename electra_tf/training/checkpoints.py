"""The training loop's checkpoints: save, resume, SIGTERM, weights-only restore.

The recipe's TF1 Estimator saved model + optimizer slots + global_step every N steps and resumed
from model_dir; the input position was lost on restart. Here a checkpoint also holds the input
iterator, so a resumed run continues the same data stream (and, with stateless randomness keyed by
step and example, the very same computation), as long as it reads the same input: InputRecord
(model_dir/input_stream.json) says whether it does. Nothing here knows which model it saves: what a
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
                 iterator=None, state_directory: str = "", peer_directories=(), **objects):
        self._state = tf.train.Checkpoint(**objects)
        self._state_directory = state_directory or directory
        self._peer_directories = list(peer_directories) or [directory]
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

    def restore_latest(self, restore_iterator: bool = True) -> tuple:
        """Restores the newest checkpoint, if any: (path or "", whether the input position was
        restored). `restore_iterator=False` leaves the input iterator at its start (the run
        reads other files than the checkpoint's stream did)."""
        path = self.resumable()
        if not path:
            return "", False
        own = io.join(self._directory, io.basename(path))
        try:
            self._state.restore(path).expect_partial().assert_existing_objects_matched()
            has_iterator = (restore_iterator and self._iterator is not None
                            and tf.io.gfile.exists(own + ".index")
                            and any(name.startswith(self._iterator_key + "/")
                                    for name, _ in tf.train.list_variables(own)))
            if has_iterator:
                tf.train.Checkpoint(**{self._iterator_key: self._iterator}).restore(
                    own).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as e:
            raise UserError(f"cannot resume from {path}: {first_line(e)}") from None
        return path, has_iterator

    def resumable(self) -> str:
        """The checkpoint a restart resumes from: the newest one in `state_directory` that every
        worker's directory (`peer_directories`) holds too, so all workers restore the same step
        with their own input positions (a worker that died while the chief saved lacks the
        newest); the newest one when none is complete (another number of workers wrote them)."""
        state = tf.train.get_checkpoint_state(self._state_directory)
        if state is None or not state.model_checkpoint_path:
            return ""
        paths = [io.join(self._state_directory, io.basename(p))
                 for p in state.all_model_checkpoint_paths]
        for path in reversed(paths):  # newest saved first (a rerun re-saves a number anew)
            if all(tf.io.gfile.exists(io.join(d, io.basename(path)) + ".index")
                   for d in self._peer_directories):
                return path
        return io.join(self._state_directory, io.basename(state.model_checkpoint_path))

    def save(self, step: int) -> str:
        return self.manager.save(checkpoint_number=step)


INPUT_STREAM_FILE = "input_stream.json"


class InputRecord:
    """model_dir/input_stream.json: what the checkpoints' input iterators were built from.

    A checkpoint's iterator state (file positions, shuffle buffer) continues the stream it was
    saved from, whatever files the resumed run names. The record tells whether the run's
    input (a JSON-able description: its files with their sizes, the sequence length) is that
    stream; when it is not, the iterator is not restored and the stream restarts from the new
    input. The chief rewrites it after the first checkpoint of a run that changed it (after, so
    that a kill between the two leaves a record older than the checkpoint, which only makes the
    next resume restart the stream, never continue a foreign one).
    """

    def __init__(self, model_dir: str, description, write: bool):
        self.path = io.join(model_dir, INPUT_STREAM_FILE)
        self.description = description
        self._chief_writes = write and description is not None
        self._recorded = None
        if description is not None and tf.io.gfile.exists(self.path):
            try:
                self._recorded = io.read_json(self.path)
            except ValueError as e:
                raise UserError(str(e)) from None

    def matches(self) -> bool:
        """False only when a record exists and names another input (no record: a model_dir of
        an older version, whose stream is taken to be this one, as before)."""
        return self._recorded is None or self._recorded == self.description

    def saved(self) -> None:
        """Called after each checkpoint save: the checkpoint now holds this input's stream."""
        if self._chief_writes and self._recorded != self.description:
            io.write_json(self.path, self.description)
            self._recorded = self.description


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
