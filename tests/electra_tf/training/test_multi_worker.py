"""run_pretraining.py and run_finetuning.py under multi_worker_mirrored, as a user starts them:
two processes on loopback, each with its TF_CONFIG.

- The entry points start (the strategy comes before any TensorFlow op) and train.
- TensorFlow's cluster layouts: the same two processes described as {chief, worker} (Vertex AI,
  Kubernetes operators) and as {worker, worker} are the same input pipelines 0 and 1, so they
  end with identical checkpoints; only the chief writes model_dir itself.
- A worker killed mid-run: the survivor stops within seconds with one `error:` line, the last
  checkpoint is intact, and both restarted resume from it.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.electra_tf.finetune.helpers import VOCAB, sentiment_rows, tiny_config, write_table
from tests.electra_tf.training.helpers import free_ports, write_shards, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")
TINY = ["--model_size=demo", "--hidden_size=16", "--embedding_size=8", "--num_hidden_layers=1",
        "--num_attention_heads=1", "--intermediate_size=32", "--max_seq_length=16",
        "--generator_hidden_size=0.5", "--train_batch_size=8", "--learning_rate=1e-3",
        "--num_warmup_steps=2", "--strategy=multi_worker_mirrored", "--deterministic"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    train = write_shards(str(root / "train"), num_files=2, examples_per_file=64, seq_length=16)
    vocab = write_vocab(str(root / "vocab.txt"))
    return [f"--train_files={train}", f"--vocab_file={vocab}"] + TINY


def tf_configs(layout):
    """The TF_CONFIG of the two processes: "chief" = {chief: [a], worker: [b]}, "workers" =
    {worker: [a, b]}; process 0 is the chief / worker 0 in both."""
    a, b = (f"localhost:{p}" for p in free_ports(2))
    if layout == "chief":
        cluster = {"chief": [a], "worker": [b]}
        tasks = [("chief", 0), ("worker", 0)]
    else:
        cluster = {"worker": [a, b]}
        tasks = [("worker", 0), ("worker", 1)]
    return [json.dumps({"cluster": cluster, "task": {"type": t, "index": i}}) for t, i in tasks]


def start_pair(script, args, layout="workers"):
    processes = []
    for config in tf_configs(layout):
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
            env=dict(ENV, TF_CONFIG=config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    return processes


def finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out, err


def checkpoint_values(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name)
            for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype != tf.variant and not name.startswith("save_counter")}


def error_lines(err):
    """stderr's lines without TensorFlow's C++ log records (and their continuation lines)."""
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_chief_and_worker_equal_two_workers_and_a_killed_worker_stops_the_other(
        inputs, tmp_path):
    runs = {layout: tmp_path / layout for layout in ("chief", "workers")}
    running = {layout: start_pair("run_pretraining.py", inputs + [
        f"--model_dir={model_dir}", "--num_train_steps=3", "--steps_per_loop=3",
        "--save_checkpoints_steps=3"], layout) for layout, model_dir in runs.items()}
    for pair in running.values():
        for process in pair:
            finish(process)

    # Identical checkpoints: the same pipelines read the same rows in both layouts (a chief
    # and worker 0 both taking pipeline 0 would leave rows 4..7 of every batch unread).
    values = {layout: checkpoint_values(str(d / "ckpt-3")) for layout, d in runs.items()}
    assert values["chief"].keys() == values["workers"].keys() and len(values["chief"]) > 20
    for name in values["chief"]:
        np.testing.assert_array_equal(values["chief"][name], values["workers"][name],
                                      err_msg=name)
    # Only the chief writes model_dir; the other process keeps its own input position apart.
    for model_dir in runs.values():
        assert sorted(os.listdir(model_dir / "workers")) == ["worker-1"]
        assert {"checkpoint", "config.json", "objective.json", "input_stream.json",
                "train"} <= set(os.listdir(model_dir))

    # Kill the worker mid-run: the chief stops with one error line, within seconds.
    model_dir = runs["chief"]
    long_run = inputs + [f"--model_dir={model_dir}", "--num_train_steps=100000",
                         "--steps_per_loop=1", "--save_checkpoints_steps=2"]
    chief, worker = start_pair("run_pretraining.py", long_run, "chief")
    for line in chief.stderr:
        if "saved checkpoint" in line and not line.rstrip().endswith("ckpt-3"):
            break
    time.sleep(1)
    worker.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    _, rest = chief.communicate(timeout=300)
    took = time.monotonic() - killed_at
    worker.wait()
    assert chief.returncode == 2, rest[-3000:]
    assert took < 60, took
    print(f"the surviving chief failed {took:.1f} s after the worker was killed")
    assert "Traceback" not in rest
    errors = error_lines(rest)
    assert len(errors) == 1 and "another worker stopped answering" in errors[0], rest[-3000:]
    # The newest checkpoint both processes saved (the worker may have died while the chief
    # saved a newer one): all workers resume from the same step with their own input positions.
    latest = errors[0].split("last good checkpoint: ", 1)[1].split(";")[0]
    stopped_at = int(latest.rsplit("-", 1)[1])
    assert os.path.dirname(latest) == str(model_dir)
    assert os.path.exists(model_dir / "workers" / "worker-1" / f"ckpt-{stopped_at}.index")
    assert stopped_at >= 4
    saved = checkpoint_values(latest)  # complete and readable
    assert int(saved["step/.ATTRIBUTES/VARIABLE_VALUE"]) == stopped_at
    assert all(np.all(np.isfinite(v)) for v in map(np.asarray, saved.values())
               if v.dtype.kind == "f")

    # Both restarted: they resume from that checkpoint and train on.
    pair = start_pair("run_pretraining.py", inputs + [
        f"--model_dir={model_dir}", f"--num_train_steps={stopped_at + 1}",
        "--steps_per_loop=1"], "chief")
    for process in pair:
        _, err = finish(process)
        assert f"resumed from {latest} at step {stopped_at}" in err, err[-2000:]
        assert "input stream restarts" not in err
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{stopped_at + 1}")


def test_fine_tuning_starts_and_trains_on_a_chief_and_a_worker(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    train = write_table(tmp_path / "train.tsv", ["text", "label"], sentiment_rows(32, 0))
    dev = write_table(tmp_path / "dev.tsv", ["text", "label"], sentiment_rows(8, 1))
    config = str(tmp_path / "config.json")
    tiny_config().save(config)
    model_dir = tmp_path / "model"
    chief, worker = start_pair("run_finetuning.py", [
        "--task=classification", f"--train_file={train}", f"--dev_file={dev}",
        f"--vocab_file={vocab}", f"--model_dir={model_dir}", "--strategy=multi_worker_mirrored",
        "--max_seq_length=16", "--train_batch_size=8", "--eval_batch_size=8",
        "--num_train_epochs=1", f"--config_file={config}"], "chief")
    finish(chief)
    finish(worker)
    with open(model_dir / "results.json") as f:
        results = json.load(f)
    assert results["trials"][0]["step"] == 4  # 32 examples / 8 a step
    assert "accuracy" in results["trials"][0]["results"]["dev"]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-4")
