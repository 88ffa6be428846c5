"""Export with every path on TensorFlow's in-memory filesystem (ram://), which no open() or os
call can reach: a fine-tuned model_dir on ram:// (its recorded vocabulary included) exports to a
ram:// export_dir, the SavedModel loads back from ram:// and answers raw text, a version is
replaced only with overwrite, and nothing is written to the local disk.

The classifier's head is set by hand (zero kernel, bias [0, ln 3]) so its answer is known
whatever the encoder computes: softmax([0, ln 3]) = [1/4, 3/4], label "pos"."""

import math
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from electra_tf.export import saved_model
from electra_tf.finetune.model import SequenceModel

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "good", "bad", "."]
CONFIG = ModelConfig(vocab_size=len(VOCAB), embedding_size=16, hidden_size=16,
                     num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16, generator_hidden_size=0.5)
LABELS = ["neg", "pos"]


def _fine_tuned_dir(root: str, bias: tuple) -> str:
    """A fine-tuned model_dir on ram:// as fine-tuning leaves it: checkpoint, config.json,
    finetune_task.json and the vocabulary it records (by name and sha256)."""
    model_dir = f"{root}/finetuned"
    model = SequenceModel(CONFIG, num_labels=len(LABELS))
    kernel, head_bias = model.head.dense.kernel, model.head.dense.bias
    kernel.assign(np.zeros(kernel.shape, np.float32))
    head_bias.assign(np.array(bias, np.float32))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, 1).save(0)
    CONFIG.save(f"{model_dir}/config.json")
    io.write_text(f"{model_dir}/vocab.txt", "\n".join(VOCAB) + "\n")
    io.write_json(f"{model_dir}/finetune_task.json", {
        "task": "classification", "kind": "classification", "labels": LABELS,
        "vocab_file": "vocab.txt", "vocab_sha256": io.sha256_file(f"{model_dir}/vocab.txt"),
        "do_lower_case": True, "strip_accents": True, "max_seq_length": 8, "text_pairs": False})
    return model_dir


def _serve(path: str, texts: list) -> dict:
    serve = tf.saved_model.load(path).signatures["serving_default"]
    return serve(text=tf.constant(texts), text_b=tf.constant([], tf.string))


def test_export_from_and_to_ram(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a local write to a "ram:" path would land here
    root = f"ram://{uuid.uuid4().hex}"
    model_dir = _fine_tuned_dir(root, bias=(0.0, math.log(3.0)))
    export_dir = f"{root}/serving"

    # The recorded vocabulary is read from the ram:// model_dir (no --vocab_file).
    path = saved_model.export_saved_model(model_dir, None, export_dir)
    assert path == f"{export_dir}/1"
    # Only the version directory: no hidden staging directory is left behind.
    assert io.listdir(export_dir) == ["1"]
    assert tf.io.gfile.exists(f"{path}/saved_model.pb")
    assert io.read_text(f"{path}/assets/vocab.txt") == "\n".join(VOCAB) + "\n"

    outputs = _serve(path, ["The movie was good .", "bad"])
    np.testing.assert_allclose(outputs["probabilities"].numpy(), [[0.25, 0.75]] * 2, atol=1e-6)
    assert [label.decode() for label in outputs["label"].numpy()] == ["pos", "pos"]

    # The next export is version 2; version 1 is refused without overwrite.
    assert saved_model.next_version(export_dir) == 2
    with pytest.raises(UserError, match=f"{export_dir}/1 already exists; pass --overwrite"):
        saved_model.export_saved_model(model_dir, None, export_dir, version=1)

    # With overwrite, version 1 is replaced by the model with the opposite bias.
    other = _fine_tuned_dir(f"{root}/other", bias=(math.log(3.0), 0.0))
    assert saved_model.export_saved_model(other, None, export_dir, version=1,
                                          overwrite=True) == path
    assert io.listdir(export_dir) == ["1"]
    outputs = _serve(path, ["good"])
    np.testing.assert_allclose(outputs["probabilities"].numpy(), [[0.75, 0.25]], atol=1e-6)
    assert outputs["label"].numpy()[0].decode() == "neg"

    assert os.listdir(tmp_path) == []


def test_saved_model_pb_is_the_last_file_to_appear(tmp_path, monkeypatch):
    """Off the local disk a version directory fills file by file; saved_model.pb, which makes
    it a SavedModel for a loader, must be the last file moved into it."""
    monkeypatch.chdir(tmp_path)
    root = f"ram://{uuid.uuid4().hex}"
    model_dir = _fine_tuned_dir(root, bias=(0.0, 0.0))
    renamed = []
    rename = tf.io.gfile.rename

    def recording_rename(source, target, overwrite=False):
        renamed.append(target)
        return rename(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "rename", recording_rename)
    path = saved_model.export_saved_model(model_dir, None, f"{root}/serving")
    into_version = [t for t in renamed if t.startswith(path + "/")]
    assert into_version[-1] == f"{path}/saved_model.pb"
    assert f"{path}/variables/variables.index" in into_version
    assert os.listdir(tmp_path) == []


def test_unreachable_export_dir_is_one_line(tmp_path, monkeypatch):
    """A filesystem that cannot be reached (here a scheme without a plugin; gs:// without
    credentials fails the same way) is a UserError naming --export_dir, not a traceback."""
    monkeypatch.chdir(tmp_path)
    model_dir = _fine_tuned_dir(f"ram://{uuid.uuid4().hex}", bias=(0.0, 0.0))
    with pytest.raises(UserError, match=r"^--export_dir=nosuchfs://bucket/serving: "
                                        r"File system scheme 'nosuchfs' not implemented"):
        saved_model.export_saved_model(model_dir, None, "nosuchfs://bucket/serving")
    assert os.listdir(tmp_path) == []
