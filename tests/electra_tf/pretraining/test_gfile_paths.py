"""Pre-training with every path on TensorFlow's in-memory filesystem (ram://), which no open(),
os.path or shutil call can reach: shards, vocabulary and model_dir through tf.io.gfile only,
including a resume from a checkpoint (issue 16: gs://, s3://, hdfs:// work the same way)."""

import dataclasses
import json
import os
import uuid

import numpy as np
import tensorflow as tf

from electra_tf.pretraining import app
from electra_tf.pretraining.options import PretrainOptions
from tests.electra_tf.pretraining.test_app import TINY
from tests.electra_tf.training.helpers import write_shards, write_vocab


def to_ram(local_path: str, root: str) -> str:
    """Copies a local file to `root` on ram://; returns its new name."""
    target = f"{root}/{os.path.basename(local_path)}"
    tf.io.gfile.makedirs(root)
    tf.io.gfile.copy(local_path, target, overwrite=True)
    return target


def checkpoint_values(model_dir: str) -> dict:
    """Model, optimizer, step and input position in the newest checkpoint of model_dir, read by
    TensorFlow itself (not save_counter, which counts saves). tf.train.load_checkpoint would take
    ram://.../ckpt-6 for a directory: ram:// directories are name prefixes."""
    reader = tf.compat.v1.train.NewCheckpointReader(tf.train.latest_checkpoint(model_dir))
    return {name: reader.get_tensor(name)
            for name, dtype in reader.get_variable_to_dtype_map().items()
            if dtype != tf.variant and not name.startswith("save_counter")}


def test_pretraining_reads_and_writes_only_through_gfile_and_resumes_there(tmp_path):
    local = tmp_path / "local"
    train = write_shards(str(local / "train"), num_files=2, examples_per_file=32, seq_length=16)
    held_out = write_shards(str(local / "eval"), num_files=1, examples_per_file=16,
                            seq_length=16, seed=7)
    root = f"ram://pretrain-{uuid.uuid4().hex}"
    for pattern, name in ((train, "train"), (held_out, "eval")):
        for path in tf.io.gfile.glob(pattern) + [os.path.join(os.path.dirname(pattern),
                                                              "dataset_info.json")]:
            to_ram(path, f"{root}/{name}")
    vocab = to_ram(write_vocab(str(local / "vocab.txt")), root)
    # Nothing of the run may land on the local disk, under the working directory or elsewhere.
    os.chdir(tmp_path)
    options = PretrainOptions(
        train_files=f"{root}/train/pretrain_data.tfrecord-*",
        eval_files=f"{root}/eval/pretrain_data.tfrecord-*", vocab_file=vocab,
        model_dir=f"{root}/whole", num_train_steps=6, **{**TINY, "save_checkpoints_steps": 3})

    whole = app.run(options)
    assert whole.step == 6
    names = set(tf.io.gfile.listdir(options.model_dir))
    for expected in ("config.json", "objective.json", "eval_results.json", "input_stream.json",
                     "checkpoint", "ckpt-3.index", "ckpt-6.index"):
        assert expected in names, names
    assert any(tf.io.gfile.glob(f"{options.model_dir}/train/events.out.tfevents.*"))
    history = json.loads(tf.io.gfile.GFile(f"{options.model_dir}/eval_results.json").read())
    assert [entry["step"] for entry in history["history"]] == [0, 6], history

    # A run killed after its step-3 checkpoint: the model_dir as it was then.
    resumed_dir = f"{root}/resumed"
    tf.io.gfile.makedirs(resumed_dir)
    for name in names:
        if name.startswith("ckpt-3") or name.endswith(".json"):
            tf.io.gfile.copy(f"{options.model_dir}/{name}", f"{resumed_dir}/{name}")
    tf.io.gfile.GFile(f"{resumed_dir}/checkpoint", "w").write(
        'model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n')
    resumed = app.run(dataclasses.replace(options, model_dir=resumed_dir))
    assert resumed.step == 6
    # The checkpoint kept the input position: steps 4-6 read the batches the whole run read.
    want, got = checkpoint_values(options.model_dir), checkpoint_values(resumed_dir)
    assert got["input_position/.ATTRIBUTES/VARIABLE_VALUE"] == 6
    assert want.keys() == got.keys() and len(want) > 30
    for name in want:
        if np.issubdtype(np.asarray(want[name]).dtype, np.floating):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert not any(p.name.startswith(("whole", "resumed")) for p in tmp_path.rglob("*"))
