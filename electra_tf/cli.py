"""What every entry script shares: one-line errors for bad input, a progress line with ETA and
a quiet start-up.

Bad input must never end in a traceback: code anywhere raises `UserError("what is wrong: where")`
and `run` prints it as a single `error:` line with a non-zero exit status.

Start-up: TensorFlow's C++ libraries print a handful of notices to file descriptor 2 while they
load and while the first device scan runs (oneDNN, cudart, CPU features, the absl pre-init
warning and, on a machine without a GPU, "failed call to cuInit ... (303)"), before absl's
logging takes over and whatever TF_CPP_MIN_LOG_LEVEL says. Importing this module first (the
entry scripts do) imports TensorFlow and scans the devices with descriptor 2 pointed at a
temporary file, then writes back to the real descriptor 2 every line except those known notices,
so real errors of that phase still appear, in order. ELECTRA_TF_STARTUP_NOTICES=1 turns the
filter off.
"""

import contextlib
import os
import re
import sys
import tempfile
import time

from absl import app, flags, logging

# The C++ start-up notices of a TensorFlow process on a machine without a GPU: absl's log line
# prefix ("I0000 00:00:1796225941.412535    4138 port.cc:153] "), then file and message.
_LOG_PREFIX = r"[IWE]\d{4} [\d:.]+\s+\d+ "
STARTUP_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rf"|{_LOG_PREFIX}port\.cc:\d+\] oneDNN custom operations are on\..*"
    rf"|{_LOG_PREFIX}cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine.*"
    rf"|{_LOG_PREFIX}cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized.*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\."
    rf"|{_LOG_PREFIX}cuda_(?:platform|executor)\.cc:\d+\] failed call to cuInit: .*"
    r"(?:UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE.*|\(100\))")


def drop_startup_notices(text: str) -> str:
    """`text` without the lines that are TensorFlow's known start-up notices."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not STARTUP_NOTICES.fullmatch(line.rstrip("\r\n")))


@contextlib.contextmanager
def filtered_stderr():
    """Points file descriptor 2 at a temporary file for the block; afterwards writes what was
    written there, known start-up notices left out, to the real descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = drop_startup_notices(captured.read().decode("utf-8", "replace"))
            if kept:
                os.write(2, kept.encode("utf-8"))


def quiet_tensorflow_startup() -> None:
    """Imports TensorFlow and runs its device scan with the start-up notices filtered out;
    nothing when TensorFlow is already imported or ELECTRA_TF_STARTUP_NOTICES=1."""
    if "tensorflow" in sys.modules or os.environ.get("ELECTRA_TF_STARTUP_NOTICES") == "1":
        return
    with filtered_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()


quiet_tensorflow_startup()

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's flags, files or data, reported as one line."""


def fail(message: str) -> "NoReturn":  # noqa: F821 (typing only)
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_USER_ERROR)


def _parse_flags(argv):
    # absl's own parser reports a bad flag on two lines with exit status 1; ours says it once.
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(str(e))


def run(main) -> None:
    """Like absl.app.run, with bad flags, UserError and interrupted runs reported as one line."""

    def guarded(argv):
        # TensorFlow's INFO records (SavedModel writing, checkpoint sharding) bury the progress
        # lines; --verbosity=0 brings them back.
        if not flags.FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except UserError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted")

    app.run(guarded, flags_parser=_parse_flags)


def format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Rate and ETA for long work, printed at most every `interval` seconds to stderr.

    `update(done, **counters)` takes the amount of work done so far (in the unit that `total` is
    measured in) and any counters whose rate is worth showing (tokens, examples).
    """

    def __init__(self, total: float, unit: str, interval: float = 2.0, stream=None):
        self.total = total
        self.unit = unit
        self.interval = interval
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self._last_print = 0.0

    def line(self, done: float, **counters) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        parts = [f"{done:,.0f}/{self.total:,.0f} {self.unit}" if self.total else
                 f"{done:,.0f} {self.unit}"]
        parts.append(f"{done / elapsed:,.1f} {self.unit}/s")
        for name, value in counters.items():
            parts.append(f"{value / elapsed:,.0f} {name}/s")
        if self.total and done:
            parts.append(f"ETA {format_duration((self.total - done) * elapsed / done)}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        return " | ".join(parts)

    def update(self, done: float, force: bool = False, **counters) -> None:
        now = time.monotonic()
        if force or now - self._last_print >= self.interval:
            self._last_print = now
            self.stream.write(self.line(done, **counters) + "\n")
            self.stream.flush()
