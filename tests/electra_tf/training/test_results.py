"""Tests of electra_tf/training/results.py: the one writer of eval_results.json."""

import json

import numpy as np

from electra_tf.training import results


def test_record_eval_keeps_the_history_and_replaces_repeated_steps(tmp_path):
    model_dir = str(tmp_path / "m")
    results.record_eval(model_dir, 0, {"loss": np.float32(2.5), "auc": 0.5})
    results.record_eval(model_dir, 10, {"loss": 1.5, "auc": np.float64(0.75)})
    results.record_eval(model_dir, 20, {"loss": 1.0, "auc": 0.8})
    # A run resumed from step 10 evaluates at 10 again: what came after is dropped.
    entry = results.record_eval(model_dir, 10, {"loss": 1.25, "auc": 0.7})
    saved = json.load(open(tmp_path / "m" / results.EVAL_RESULTS_FILE))
    assert entry == saved["latest"] == {"step": 10, "loss": 1.25, "auc": 0.7}
    assert saved["history"] == [{"step": 0, "loss": 2.5, "auc": 0.5},
                                {"step": 10, "loss": 1.25, "auc": 0.7}]
    assert results.read_history(model_dir) == saved["history"]
    assert results.read_history(str(tmp_path / "none")) == []
    assert [p.name for p in (tmp_path / "m").iterdir()] == [results.EVAL_RESULTS_FILE]


def test_record_eval_keeps_results_nested_per_split(tmp_path):
    model_dir = str(tmp_path)
    results.record_eval(model_dir, 5, {"dev": {"accuracy": np.float32(0.5), "loss": 0.7},
                                       "dev_mismatched": {"accuracy": 0.25}})
    saved = json.load(open(tmp_path / results.EVAL_RESULTS_FILE))
    assert saved["latest"] == {"step": 5, "dev": {"accuracy": 0.5, "loss": 0.7},
                               "dev_mismatched": {"accuracy": 0.25}}
