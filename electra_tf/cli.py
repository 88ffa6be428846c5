"""What every entry script shares: one-line errors for bad input and a progress line with ETA.

Bad input must never end in a traceback: code anywhere raises `UserError("what is wrong: where")`
and `run` prints it as a single `error:` line with a non-zero exit status.
"""

import sys
import time

from absl import app, flags, logging

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
