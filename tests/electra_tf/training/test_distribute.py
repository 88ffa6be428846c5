"""Distribution tests: one_device, mirrored (2 logical CPUs) and multi_worker_mirrored (2 local
worker processes) give the same first step, checkpoints move between strategies, and every step
applies -lr times the clipped global gradient (the Trainer's gradient contract).

Each configuration runs tests/electra_tf/training/distributed_worker.py in its own process(es)
(logical devices and TF_CONFIG must be set before TensorFlow starts). Dropout is 0 in the tiny
model: dropout masks are keyed per replica, so only a dropout-free model can be compared across
replica counts; masking and sampling are keyed per example and stay on.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from electra_tf.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def start(out, model_dir, steps, strategy="one_device", cpu_devices=0, tf_config=None):
    env = dict(ENV)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, "-m", "tests.electra_tf.training.distributed_worker",
               f"--strategy={strategy}", f"--cpu_devices={cpu_devices}",
               f"--model_dir={model_dir}", f"--steps={steps}", f"--out={out}"]
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


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def multi_worker(tmp_path, name, steps):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [start(str(tmp_path / f"{name}{i}"), tmp_path / name, steps,
                  "multi_worker_mirrored",
                  tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(2)]


@pytest.fixture(scope="module")
def first_steps(tmp_path_factory):
    """One step under each strategy, and two mirrored steps (for the checkpoint test)."""
    tmp = tmp_path_factory.mktemp("dist")
    one = start(str(tmp / "one"), tmp / "one", 1)
    mirrored = start(str(tmp / "mirrored"), tmp / "mirrored", 2, "mirrored", cpu_devices=2)
    finish(one, mirrored)
    finish(*multi_worker(tmp, "mwms", 1))
    return tmp


def assert_same_step(reference, other):
    (ref_summary, ref_weights), (summary, weights) = reference, other
    for name in ("loss", "masked_lm_loss", "disc_loss", "disc_auc", "gradient_norm"):
        assert summary["first"][name] == pytest.approx(ref_summary["first"][name], rel=1e-5), name
    end = [k for k in ref_weights if k.startswith("end/")]
    assert len(end) > 10
    for key in end:
        np.testing.assert_allclose(weights[key], ref_weights[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_mirrored_and_multi_worker_first_steps_match_one_device(first_steps):
    one = load(str(first_steps / "one"))
    assert one[0]["replicas"] == 1
    for start_key in [k for k in one[1] if k.startswith("start/")]:
        # The SGD step moved the weights, so equal end weights compare real updates.
        assert not np.array_equal(one[1][start_key], one[1]["end/" + start_key[6:]])
    mwms = load(str(first_steps / "mwms0"))
    assert mwms[0]["replicas"] == 2
    assert_same_step(one, mwms)
    mirrored_summary = json.load(open(first_steps / "mirrored.json"))
    assert mirrored_summary["replicas"] == 2
    assert mirrored_summary["first"]["loss"] == pytest.approx(one[0]["first"]["loss"], rel=1e-5)
    assert mirrored_summary["first"]["gradient_norm"] == pytest.approx(
        one[0]["first"]["gradient_norm"], rel=1e-5)


def test_checkpoints_written_under_one_strategy_restore_under_another(first_steps, tmp_path):
    # mirrored (2 steps) -> one_device continues to step 3 == one_device for 3 steps straight.
    resumed = start(str(tmp_path / "resumed"), first_steps / "mirrored", 3)
    straight = start(str(tmp_path / "straight"), tmp_path / "straight", 3)
    finish(resumed, straight)
    summary, weights = load(str(tmp_path / "resumed"))
    assert summary["started_at"] == 2 and summary["step"] == 3
    _, reference = load(str(tmp_path / "straight"))
    for key in [k for k in reference if k.startswith("end/")]:
        np.testing.assert_allclose(weights[key], reference[key], rtol=1e-5, atol=1e-6)

    # multi-worker (1 step) -> one_device restores the same weights at step 1.
    finish(start(str(tmp_path / "from_mwms"), first_steps / "mwms", 2))
    summary, weights = load(str(tmp_path / "from_mwms"))
    _, mwms_weights = load(str(first_steps / "mwms0"))
    assert summary["started_at"] == 1
    for key in [k for k in mwms_weights if k.startswith("end/")]:
        np.testing.assert_array_equal(weights["start/" + key[4:]], mwms_weights[key])
    # one_device (3 steps) -> multi-worker continues from step 3 with the same weights.
    shutil.copytree(tmp_path / "straight", tmp_path / "to_mwms")
    finish(*multi_worker(tmp_path, "to_mwms", 4))
    summary, weights = load(str(tmp_path / "to_mwms0"))
    assert summary["started_at"] == 3 and summary["step"] == 4
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
