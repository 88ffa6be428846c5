"""The training loop's checkpoints: save, resume, SIGTERM, weights-only restore.

The recipe's TF1 Estimator saved model + optimizer slots + global_step every N steps and resumed
from model_dir; the input position was lost on restart. Here a checkpoint also holds the input
position (how many batches the run took), so a resumed run continues the same data stream (and,
with stateless randomness keyed by step and example, the very same computation), as long as it
reads the same input: InputRecord (model_dir/input_stream.json) says whether it does. Nothing
here knows which model it saves: what a checkpoint holds and which architecture it must match is
electra_tf.checkpoint_io's job.
"""

import signal
import threading

import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.io import first_line


def checkpoint_directory(model_dir: str, chief: bool, worker: int) -> str:
    """Where this process keeps its checkpoints.

    Every multi-worker process must take part in saving (the collectives of a save need all of
    them); non-chief workers keep their copies under model_dir/workers/worker-<i>.
    """
    return model_dir if chief else io.join(model_dir, "workers", f"worker-{worker}")


class CheckpointKeeper:
    """tf.train.CheckpointManager over model, optimizer, step and the input position.

    Everything is restored from the newest checkpoint in `state_directory` (the chief's
    model_dir), so all workers resume at the same step. The input position (a variable: the
    number of batches taken) is stored under `position_key`, which names the input layout
    ("input_position" for one input pipeline, "input_position_of_<n>_workers" for n): the
    files are sharded over the workers, so a stream continues only on the same layout. When
    the checkpoint has no position under this key (say, 2 workers resuming a one-machine run),
    everything but the position is restored and the stream restarts from its seed.
    """

    def __init__(self, directory: str, keep_checkpoint_max: int,
                 position_key: str = "input_position", position=None,
                 state_directory: str = "", peer_directories=(), **objects):
        self._state = tf.train.Checkpoint(**objects)
        self._state_directory = state_directory or directory
        self._peer_directories = list(peer_directories) or [directory]
        self._position_key = position_key
        self._position = position
        if position is not None:
            objects[position_key] = position
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=keep_checkpoint_max or None)

    @property
    def latest(self) -> str:
        return self.manager.latest_checkpoint

    def restore_latest(self, restore_position: bool = True) -> tuple:
        """Restores the newest checkpoint, if any: (path or "", whether the input position was
        restored). `restore_position=False` leaves the position at 0 (the run reads other
        files than the checkpoint's stream did)."""
        path = self.resumable()
        if not path:
            return "", False
        try:
            self._state.restore(path).expect_partial().assert_existing_objects_matched()
            has_position = (restore_position and self._position is not None
                            and any(name.startswith(self._position_key + "/") for name in
                                    io.checkpoint_reader(path).get_variable_to_shape_map()))
            if has_position:
                tf.train.Checkpoint(**{self._position_key: self._position}).restore(
                    path).expect_partial().assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as e:
            raise UserError(f"cannot resume from {path}: {first_line(e)}") from None
        return path, has_position

    def resumable(self) -> str:
        """The checkpoint a restart resumes from: the newest one in `state_directory` that every
        worker's directory (`peer_directories`) holds too, i.e. whose save every worker finished
        (a worker that died while the chief saved lacks the newest); the newest one when none is
        complete (another number of workers wrote them)."""
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
    """model_dir/input_stream.json: what the checkpoints' input streams were built from.

    A checkpoint's input position continues the stream it was saved from only when the resumed
    run reads the same files. The record tells whether the run's
    input (a JSON-able description: its files with their sizes, the sequence length) is that
    stream; when it is not, the position is not restored and the stream restarts from the new
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
