"""End-to-end tests of run_pretraining.py as a user runs it: a real (tiny) ELECTRA in subprocesses.

Covers a full run (eval start/end, TensorBoard, config.json), SIGTERM (save, exit 0, resume),
SIGKILL + restart in --deterministic mode (bit-identical to an uninterrupted run) and bad input
(one line on stderr, non-zero exit, no traceback, nothing lost). Processes run concurrently where
they are independent, to keep the wall time down on 2 cores.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.electra_tf.training.helpers import write_shards, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
TINY = ["--model_size=demo", "--hidden_size=16", "--embedding_size=8", "--num_hidden_layers=1",
        "--num_attention_heads=1", "--intermediate_size=32", "--max_seq_length=16",
        "--generator_hidden_size=0.5", "--train_batch_size=8", "--num_eval_steps=2",
        "--learning_rate=1e-3", "--num_warmup_steps=2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    train = write_shards(str(root / "train"), num_files=2, examples_per_file=64, seq_length=16)
    held_out = write_shards(str(root / "eval"), num_files=1, examples_per_file=16,
                            seq_length=16, seed=7)
    vocab = write_vocab(str(root / "vocab.txt"))
    return {"root": root, "flags": [f"--train_files={train}", f"--eval_files={held_out}",
                                    f"--vocab_file={vocab}"] + TINY}


def start(args, **kwargs):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "run_pretraining.py")] + args,
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def finish(process):
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def wait_for_line(process, text):
    """Reads stderr until a line containing `text`; returns the lines read."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never printed:\n" + "".join(lines[-30:]))


def error_lines(err):
    """stderr without TensorFlow's start-up chatter (C++ log lines before absl starts)."""
    noise = ("WARNING: All log messages", "I0000", "E0000", "W0000", "To enable the following")
    return [line for line in err.splitlines() if line.strip() and not line.startswith(noise)]


def checkpoint_values(model_dir):
    """Model, optimizer and step values of the latest checkpoint (not the input iterator's
    state, and not save_counter, which counts saves rather than training)."""
    reader = tf.train.load_checkpoint(model_dir)
    return {name: reader.get_tensor(name)
            for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype != tf.variant and not name.startswith("save_counter")}


def test_run_evaluates_resumes_after_sigkill_bit_identically_and_stops_on_sigterm(
        inputs, tmp_path):
    common = inputs["flags"] + ["--deterministic", "--steps_per_loop=2",
                                "--save_checkpoints_steps=4"]
    straight = start(common + [f"--model_dir={tmp_path / 'straight'}", "--num_train_steps=16"])
    killed = start(common + [f"--model_dir={tmp_path / 'killed'}", "--num_train_steps=16",
                             "--eval_files="])
    wait_for_line(killed, "saved checkpoint")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    stopped_at = int(tf.train.latest_checkpoint(str(tmp_path / "killed")).rsplit("-", 1)[1])
    assert stopped_at < 16
    code, out, err = finish(start(common + [f"--model_dir={tmp_path / 'killed'}",
                                            "--num_train_steps=16", "--eval_files="]))
    assert code == 0, err[-3000:]
    assert "resumed from" in err and f"at step {stopped_at}" in err
    assert "input stream restarts" not in err  # the same files: the same stream, continued
    code, out, err = finish(straight)
    assert code == 0, err[-3000:]

    # Bit-identical model and optimizer state after the kill and restart.
    a, b = checkpoint_values(tmp_path / "straight"), checkpoint_values(tmp_path / "killed")
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

    # The uninterrupted run evaluated at the start and the end and says what it learned.
    assert "held-out metrics" in out and "disc_auc" in out and "masked_lm_accuracy" in out
    model_dir = tmp_path / "straight"
    assert {"config.json", "eval_results.json", "train", "eval"} <= set(os.listdir(model_dir))
    text_tags = set()
    for event_file in tf.io.gfile.glob(str(model_dir / "eval" / "events*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            text_tags.update(v.tag for v in event.summary.value)
    assert {"example", "disc_auc", "masked_lm_accuracy", "sampled_masked_lm_accuracy",
            "disc_precision", "disc_recall"} <= text_tags

    # SIGTERM: saves where it is and exits 0; a rerun resumes from there.
    term_dir = tmp_path / "straight"
    running = start(common + [f"--model_dir={term_dir}", "--num_train_steps=100000",
                              "--eval_files=", "--nodeterministic"])
    wait_for_line(running, "resumed from")
    wait_for_line(running, "step 20/")
    running.send_signal(signal.SIGTERM)
    code, out, err = finish(running)
    assert code == 0, err[-3000:]
    assert "stopped by SIGTERM" in err and "rerun to resume" in out
    latest = tf.train.latest_checkpoint(str(term_dir))
    assert int(latest.rsplit("-", 1)[1]) >= 20


def test_bad_input_is_one_line_nonzero_and_loses_nothing(inputs, tmp_path):
    root = inputs["root"]
    good = inputs["flags"] + ["--num_train_steps=4", "--save_checkpoints_steps=4",
                              "--steps_per_loop=2"]
    model_dir = tmp_path / "model"
    code, _, err = finish(start(good + [f"--model_dir={model_dir}"]))
    assert code == 0, err[-3000:]
    saved = checkpoint_values(model_dir)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(root / "train", corrupt)
    bad_shard = sorted(corrupt.glob("pretrain_data.tfrecord-*"))[1]
    raw = bytearray(bad_shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # the first record stays intact: found while training
    bad_shard.write_bytes(bytes(raw))
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text("--model_size=demo\n--no_such_flag=3\n")

    cases = {
        "no files": (["--train_files=/nonexistent/shard-*"], "no files match --train_files"),
        "seq length": (["--max_seq_length=32"], "max_seq_length=16"),
        "corrupt record": ([f"--train_files={corrupt}/pretrain_data.tfrecord-*"],
                           f"{bad_shard}: corrupt record"),
        "tpu": (["--strategy=tpu"], "--strategy=tpu: no TPU found"),
        "nan": (["--learning_rate=1e10", "--num_warmup_steps=0", "--save_checkpoints_steps=1000",
                 "--num_train_steps=50"], "loss became NaN or Inf at step"),
        "other size": ([f"--model_dir={model_dir}", "--hidden_size=32",
                        "--num_train_steps=8"], "hidden_size=16 (flags: 32)"),
    }
    running = {}
    for name, (extra, _) in cases.items():
        own_dir = [] if any(a.startswith("--model_dir") for a in extra) else [
            f"--model_dir={tmp_path / name.replace(' ', '_')}"]
        running[name] = start(good + own_dir + extra)
    running["unknown flag"] = start([f"--flagfile={flagfile}"])
    cases["unknown flag"] = ([], "no_such_flag")
    for name, process in running.items():
        code, out, err = finish(process)
        lines = error_lines(err)
        assert code != 0, name
        assert "Traceback" not in err, (name, err[-3000:])
        # Progress lines may come first; the failure is one "error:" line, the last one.
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], (name, lines)
        assert cases[name][1] in errors[0], (name, errors)
    assert not tf.io.gfile.exists(str(tmp_path / "nan" / "checkpoint"))
    after = checkpoint_values(model_dir)
    assert after.keys() == saved.keys()
    for key in saved:
        np.testing.assert_array_equal(after[key], saved[key])


def test_resuming_on_other_files_says_so_restarts_the_stream_and_reads_the_new_files(
        inputs, tmp_path):
    root = inputs["root"]
    common = inputs["flags"] + ["--eval_files=", "--steps_per_loop=2",
                                "--save_checkpoints_steps=2"]
    model_dir = tmp_path / "model"
    code, _, err = finish(start(common + [f"--model_dir={model_dir}", "--num_train_steps=2"]))
    assert code == 0, err[-3000:]
    shards = sorted(str(p) for p in (root / "train").glob("pretrain_data.tfrecord-*"))
    with open(model_dir / "input_stream.json") as f:
        assert json.load(f) == {"max_seq_length": 16, "files": [
            {"path": path, "bytes": os.path.getsize(path)} for path in shards]}

    # Other files, one of them truncated in the middle of a record (its first record is
    # intact, so only reading it finds the damage): the restored stream would have gone on
    # with the old shards for 198 steps; the new stream reads the new files and meets it.
    other = tmp_path / "other"
    shutil.copytree(root / "train", other)
    bad_shard = sorted(other.glob("pretrain_data.tfrecord-*"))[1]
    raw = bad_shard.read_bytes()
    bad_shard.write_bytes(raw[:len(raw) // 2 + 50])  # 126-byte records: inside one
    code, _, err = finish(start(common + [f"--model_dir={model_dir}", "--num_train_steps=200",
                                          f"--train_files={other}/pretrain_data.tfrecord-*"]))
    assert code == 2 and "Traceback" not in err, err[-3000:]
    restart = [line for line in err.splitlines() if "input stream restarts" in line]
    assert len(restart) == 1 and "resumed from" in restart[0], err[-3000:]
    errors = [line for line in error_lines(err) if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad_shard}: corrupt record"), (
        err[-3000:])
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")

    # Other healthy files: the same line, the run trains on, and the record names them.
    healthy = write_shards(str(tmp_path / "healthy"), num_files=1, examples_per_file=32,
                           seq_length=16, seed=3)
    code, _, err = finish(start(common + [f"--model_dir={model_dir}", "--num_train_steps=4",
                                          f"--train_files={healthy}"]))
    assert code == 0, err[-3000:]
    assert "at step 2 (the training input differs" in err
    with open(model_dir / "input_stream.json") as f:
        assert [entry["path"] for entry in json.load(f)["files"]] == [
            str(tmp_path / "healthy" / "pretrain_data.tfrecord-00000-of-00001")]
