"""Distribution tests: one_device, mirrored (2 logical CPUs) and multi_worker_mirrored (2 local
worker processes) make the same updates with the recipe's optimizer (AdamW without bias
correction, clipping at global norm 1.0, through the Trainer), gradient accumulation equals the
larger batch, checkpoints move between strategies, and every step applies -lr times the clipped
global gradient (the Trainer's gradient contract, with SGD).

Each configuration runs tests/electra_tf/training/distributed_worker.py in its own process(es)
(logical devices and TF_CONFIG must be set before TensorFlow starts). Dropout is 0 in the tiny
model: dropout masks are keyed per replica, so only a dropout-free model can be compared across
replica counts; masking and sampling are keyed per example and stay on.

AdamW's first updates are nearly blind to the gradient's scale (m / sqrt(v)), so a doubled or
unclipped gradient would leave the weight updates alone: the tests also compare the Adam
moments, which are linear (m) and quadratic (v) in the gradient.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from electra_tf.training import distribute
from tests.electra_tf.training.helpers import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def start(out, model_dir, steps, strategy="one_device", cpu_devices=0, tf_config=None,
          extra=()):
    env = dict(ENV)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, "-m", "tests.electra_tf.training.distributed_worker",
               f"--strategy={strategy}", f"--cpu_devices={cpu_devices}",
               f"--model_dir={model_dir}", f"--steps={steps}", f"--out={out}", *extra]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(*processes):
    for process in processes:
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]


def load(out):
    with open(out + ".json") as f:
        summary = json.load(f)
    return summary, dict(np.load(out + ".npz"))


def multi_worker(tmp_path, name, steps):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [start(str(tmp_path / f"{name}{i}"), tmp_path / name, steps,
                  "multi_worker_mirrored",
                  tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(2)]


STEPS = 3


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory):
    """Three AdamW steps under each strategy, and with accumulation (equal-length examples)."""
    tmp = tmp_path_factory.mktemp("dist")
    one = start(str(tmp / "one"), tmp / "one", STEPS)
    mirrored = start(str(tmp / "mirrored"), tmp / "mirrored", STEPS, "mirrored", cpu_devices=2)
    finish(one, mirrored)
    finish(*multi_worker(tmp, "mwms", STEPS))
    # grad_accum_steps=2 at micro-batch B=4 against one step at batch 2B=8.
    accumulated = start(str(tmp / "accum"), tmp / "accum", STEPS,
                        extra=["--equal_lengths", "--grad_accum_steps=2"])
    large = start(str(tmp / "large"), tmp / "large", STEPS, extra=["--equal_lengths"])
    finish(accumulated, large)
    return tmp


def relative_difference(got: list, want: list) -> float:
    got, want = (np.concatenate([np.ravel(x).astype(np.float64) for x in xs])
                 for xs in (got, want))
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


# The attention key bias has no gradient in exact arithmetic (it shifts every score of a query
# by the same amount, which the softmax ignores): its gradient is rounding noise, which Adam's
# m / sqrt(v) turns into full-size, strategy-dependent updates. Left out of the comparison.
def compared(key: str) -> bool:
    return not key.endswith(("key/bias", "key_bias_adam_m", "key_bias_adam_v"))


def assert_same_updates(reference, other, rel=1e-6, rel_per_tensor=2e-5):
    """The weight updates (end minus start) and each Adam moment, as one vector each, equal
    within `rel`; each tensor within `rel_per_tensor` (float32 rounds weight + update to the
    weight's precision: small updates of large weights keep ~1e-6 of their size or less).
    Returns the relative differences: {"updates": .., "adam_m": .., "adam_v": ..}."""
    (_, ref), (_, got) = reference, other
    ends = [k for k in ref if k.startswith("end/") and compared(k)]
    assert len(ends) > 10
    for key in ends:  # the same initial weights
        np.testing.assert_array_equal(got["start/" + key[4:]], ref["start/" + key[4:]])
    pairs = {"updates": ([got[k] - got["start/" + k[4:]] for k in ends],
                         [ref[k] - ref["start/" + k[4:]] for k in ends])}
    for slot in ("adam_m", "adam_v"):
        keys = [k for k in ref if k.startswith("slot/") and k.endswith(slot) and compared(k)]
        assert len(keys) == len(ends)
        pairs[slot] = ([got[k] for k in keys], [ref[k] for k in keys])
    differences = {}
    for name, (got_values, want_values) in pairs.items():
        differences[name] = relative_difference(got_values, want_values)
        assert differences[name] <= rel, (name, differences[name])
        for g, w in zip(got_values, want_values):
            if np.any(w):  # an all-zero update: rows no example reaches, no decay
                assert relative_difference([g], [w]) <= rel_per_tensor, name
            else:
                assert not np.any(g), name
    return differences


def test_adamw_updates_under_mirrored_and_multi_worker_equal_one_device(three_steps):
    one = load(str(three_steps / "one"))
    assert one[0]["replicas"] == 1 and one[0]["step"] == STEPS
    # The clip is active (the global norm before clipping is far above 1.0), so a replica
    # count that changed the norm or skipped the clip would change the moments.
    assert one[0]["first"]["gradient_norm"] > 10
    worst = {}
    for name in ("mirrored", "mwms0"):
        other = load(str(three_steps / name))
        assert other[0]["replicas"] == 2 and other[0]["step"] == STEPS
        for metric in ("loss", "masked_lm_loss", "disc_loss", "disc_auc", "gradient_norm"):
            assert other[0]["first"][metric] == pytest.approx(one[0]["first"][metric],
                                                              rel=1e-5), (name, metric)
        worst[name] = assert_same_updates(one, other)
    print("largest relative difference of updates and moments:", worst)


def test_two_accumulated_micro_batches_equal_one_step_on_both(three_steps):
    large, accumulated = load(str(three_steps / "large")), load(str(three_steps / "accum"))
    # Every micro-batch holds as many tokens and masks (equal lengths), so the mean of the two
    # micro-batch gradients (each normalized by its own counts) is the large batch's. The
    # clip hides the gradient's scale from updates and moments: the norm before it shows it.
    for metric in ("loss", "gradient_norm"):
        assert accumulated[0]["first"][metric] == pytest.approx(large[0]["first"][metric],
                                                                rel=1e-5), metric
    print("largest relative difference, accumulation:",
          assert_same_updates(large, accumulated))


def test_checkpoints_written_under_one_strategy_restore_under_another(three_steps, tmp_path):
    # mirrored (3 steps) -> one_device to step 4 == one_device (3 steps) -> one_device to 4.
    shutil.copytree(three_steps / "one", tmp_path / "straight")
    resumed = start(str(tmp_path / "resumed"), three_steps / "mirrored", STEPS + 1)
    straight = start(str(tmp_path / "straight"), tmp_path / "straight", STEPS + 1)
    finish(resumed, straight)
    summary, weights = load(str(tmp_path / "resumed"))
    assert summary["started_at"] == STEPS and summary["step"] == STEPS + 1
    _, reference = load(str(tmp_path / "straight"))
    for key in [k for k in reference if k.startswith("end/")]:
        np.testing.assert_allclose(weights[key], reference[key], rtol=1e-5, atol=1e-6)

    # multi-worker (3 steps) -> one_device restores the same weights at step 3.
    finish(start(str(tmp_path / "from_mwms"), three_steps / "mwms", STEPS + 1))
    summary, weights = load(str(tmp_path / "from_mwms"))
    _, mwms_weights = load(str(three_steps / "mwms0"))
    assert summary["started_at"] == STEPS
    for key in [k for k in mwms_weights if k.startswith("end/")]:
        np.testing.assert_array_equal(weights["start/" + key[4:]], mwms_weights[key])
    # one_device (4 steps) -> multi-worker continues from step 4 with the same weights.
    shutil.copytree(tmp_path / "straight", tmp_path / "to_mwms")
    finish(*multi_worker(tmp_path, "to_mwms", STEPS + 2))
    summary, weights = load(str(tmp_path / "to_mwms0"))
    assert summary["started_at"] == STEPS + 1 and summary["step"] == STEPS + 2
    for key in [k for k in reference if k.startswith("end/")]:
        np.testing.assert_array_equal(weights["start/" + key[4:]], reference[key])


def test_tpu_strategy_without_a_tpu_is_a_user_error():
    with pytest.raises(distribute.UserError, match="--strategy=tpu: no TPU found"):
        distribute.create_strategy("tpu", tpu="")


def test_each_step_applies_minus_lr_times_the_clipped_global_gradient(tmp_path):
    """The gradient contract of loop.py, end to end with plain SGD: one replica or two, with
    or without accumulation, the weights move by -lr * (global gradient clipped to the global
    norm). A Keras that sums the replicas' gradients twice (or not at all), or a clip that is
    skipped, moves them by a different multiple."""
    out = str(tmp_path / "update")
    command = [sys.executable, "-m", "tests.electra_tf.training.update_worker", f"--out={out}"]
    process = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True,
                             timeout=600)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    saved = dict(np.load(out + ".npz"))
    for setting in ("one_device_1", "one_device_2", "mirrored_1", "mirrored_2"):
        replicas = 2 if setting.startswith("mirrored") else 1
        assert saved[f"{setting}/replicas"] == replicas
        norm = float(saved[f"{setting}/norm"])
        assert norm > 0.05 * 2  # the clip (at 0.05) is active, by a margin
        assert float(saved[f"{setting}/reported_norm"]) == pytest.approx(norm, rel=1e-5)
        deltas = sorted(k for k in saved if k.startswith(f"{setting}/delta_"))
        assert len(deltas) >= 6
        for key in deltas:
            expected = saved[key.replace("/delta_", "/expected_")]
            assert np.abs(expected).max() > 0
            np.testing.assert_allclose(saved[key], expected, rtol=1e-4, atol=1e-7,
                                       err_msg=key)


REPLICA_ROWS = """
import json, sys
from electra_tf.training import distribute
import tensorflow as tf
strategy = distribute.create_strategy(sys.argv[1], cpu_devices=int(sys.argv[2]))
micro = int(sys.argv[3])

def input_fn(global_batch_size, context):  # row r of global batch n holds 100 * n + r
    rows = tf.range(global_batch_size, dtype=tf.int64)
    return tf.data.Dataset.range(1000).map(lambda n: {"row": 100 * n + rows})

data, spec = distribute.distribute_input(strategy, input_fn, 8, micro)
batches = iter(data)
taken = [[t.numpy().tolist() for t in strategy.experimental_local_results(next(batches)["row"])]
         for _ in range(2)]
print(json.dumps({"spec": spec["row"].shape.as_list(), "taken": taken}))
"""


@pytest.mark.parametrize("strategy, devices, micro", [
    ("one_device", 0, 1), ("mirrored", 2, 1), ("mirrored", 2, 2)])
def test_distributed_input_deals_each_replica_its_consecutive_rows(strategy, devices, micro):
    output = subprocess.run([sys.executable, "-c", REPLICA_ROWS, strategy, str(devices),
                             str(micro)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert output.returncode == 0, output.stderr[-3000:]
    got = json.loads(output.stdout.strip().splitlines()[-1])
    replicas = max(devices, 1)
    rows = 8 // replicas
    # Step s takes global batches s*micro .. s*micro + micro - 1; replica i their rows
    # [i*rows, (i+1)*rows), stacked along a leading micro-batch axis when micro > 1.
    want = []
    for step in range(2):
        per_replica = []
        for replica in range(replicas):
            stacked = [[100 * (step * micro + m) + replica * rows + r for r in range(rows)]
                       for m in range(micro)]
            per_replica.append(stacked if micro > 1 else stacked[0])
        want.append(per_replica)
    assert got["taken"] == want
    assert got["spec"] == ([micro, rows] if micro > 1 else [rows])
