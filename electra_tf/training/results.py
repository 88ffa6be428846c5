"""The one writer of `eval_results.json`: a run's evaluations, the latest and their history.

    {"latest": {"step": s, **results}, "history": [{"step": s0, **results0}, ...]}

Pre-training records flat metrics ({"loss": .., "disc_auc": ..}); fine-tuning records them per
split ({"dev": {"accuracy": ..}}). An evaluation at step s replaces every recorded one at a step
>= s, so a run resumed from an earlier checkpoint rewrites the history it repeats.
"""

import numbers

import tensorflow as tf

from electra_tf import io

EVAL_RESULTS_FILE = "eval_results.json"


def _plain(value):
    # NumPy and TensorFlow scalars are not JSON; nested dicts (per split) keep their shape.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Number):
        return float(value)
    return value


def record_eval(model_dir: str, step: int, results: dict) -> dict:
    """Adds the evaluation at `step` to model_dir/eval_results.json (atomically); returns the
    entry written as "latest"."""
    path = io.join(model_dir, EVAL_RESULTS_FILE)
    history = []
    if tf.io.gfile.exists(path):
        history = [h for h in io.read_json(path).get("history", []) if h["step"] < step]
    entry = {"step": int(step), **_plain(results)}
    history.append(entry)
    io.write_json(path, {"latest": entry, "history": history}, sort_keys=False)
    return entry


def read_history(model_dir: str) -> list:
    """The recorded evaluations in step order ([] when there is no eval_results.json)."""
    path = io.join(model_dir, EVAL_RESULTS_FILE)
    if not tf.io.gfile.exists(path):
        return []
    return io.read_json(path)["history"]
