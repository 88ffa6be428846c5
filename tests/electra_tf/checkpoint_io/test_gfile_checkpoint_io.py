"""Checkpoint conversion with every path on TensorFlow's in-memory filesystem (ram://), which no
open() or os call can reach: TF1 -> ours -> TF1, and an HF safetensors directory -> ours -> HF,
value for value, with nothing written to the local disk. The values are random numbers made
here; what comes back must be exactly them."""

import json
import os
import uuid
from io import BytesIO

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load, save

from electra_tf import io
from electra_tf.checkpoint_io import hf, tf1
from electra_tf.checkpoint_io.convert import (
    convert_from_hf,
    convert_from_tf1,
    convert_to_hf,
    convert_to_tf1,
)
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from tests.electra_tf.checkpoint_io import numpy_electra
from tests.electra_tf.checkpoint_io.test_hf import (
    V,
    doc_discriminator,
    electra_config,
    random_tensors,
)

# One attention head: a TF1 checkpoint does not record the count, and the converter takes
# hidden / 64 (at least 1) as the released models have.
CONFIG = ModelConfig(vocab_size=30, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=1, intermediate_size=32, max_position_embeddings=16,
                     generator_hidden_size=0.5)


@pytest.fixture()
def ram(tmp_path, monkeypatch):
    """A fresh ram:// root; the test runs in an empty local directory, which must stay empty
    (a path written with open() or os.makedirs would appear there as "ram:/...")."""
    monkeypatch.chdir(tmp_path)
    yield f"ram://{uuid.uuid4().hex}"
    assert os.listdir(tmp_path) == []


def test_tf1_to_ours_and_back_on_ram(ram):
    weights = numpy_electra.random_weights(tf1.tf1_variable_shapes(CONFIG), seed=3)
    prefix = tf1.write_tf1_checkpoint(weights, f"{ram}/release")
    assert prefix == f"{ram}/release/model.ckpt"
    # TensorFlow's own reader, through the directory's `checkpoint` file, finds every value.
    release = tf.train.load_checkpoint(f"{ram}/release")
    assert all(np.array_equal(release.get_tensor(n), v) for n, v in weights.items())

    ours = convert_from_tf1(f"{ram}/release", f"{ram}/ours")
    assert ours == f"{ram}/ours/ckpt-0"
    assert ModelConfig.load(f"{ram}/ours/config.json") == CONFIG
    assert tf.train.latest_checkpoint(f"{ram}/ours") == ours
    # Only the checkpoint's files and config.json: no hidden staging directory left.
    assert io.listdir(f"{ram}/ours") == ["checkpoint", "ckpt-0.data-00000-of-00001",
                                         "ckpt-0.index", "config.json"]

    back = convert_to_tf1(ours, f"{ram}/back")
    assert tf.train.latest_checkpoint(f"{ram}/back") == back
    values = tf.train.load_checkpoint(f"{ram}/back")
    assert sorted(n for n in values.get_variable_to_shape_map() if n != "global_step") == sorted(
        weights)
    for name, value in weights.items():
        assert np.array_equal(values.get_tensor(name), value), name
    assert io.listdir(f"{ram}/back") == ["checkpoint", "model.ckpt.data-00000-of-00001",
                                         "model.ckpt.index"]

    with pytest.raises(UserError, match=r"already holds a checkpoint.*--overwrite"):
        convert_from_tf1(prefix, f"{ram}/ours")
    with pytest.raises(UserError, match=r"already holds a checkpoint.*--overwrite"):
        convert_to_tf1(ours, f"{ram}/back")


def test_hf_directory_to_ours_and_back_on_ram(ram):
    tensors = random_tensors(doc_discriminator(), seed=4)
    source = f"{ram}/hf"
    io.write_json(f"{source}/config.json", electra_config("ElectraForPreTraining"))
    io.write_bytes(f"{source}/model.safetensors", save(tensors, metadata={"format": "pt"}))
    vocab = f"{ram}/vocab.txt"
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    io.write_text(vocab, "".join(f"{t}\n" for t in special + [f"t{i}" for i in range(5, V)]))

    convert_from_hf(source, f"{ram}/ours")
    out = f"{ram}/out"
    convert_to_hf(f"{ram}/ours", out, vocab_file=vocab)
    assert io.listdir(out) == ["discriminator", "generator"]
    back = load(_read(f"{out}/discriminator/model.safetensors"))
    assert sorted(back) == sorted(tensors)
    for name, value in tensors.items():
        assert np.array_equal(back[name], value), name
    config = io.read_json(f"{out}/discriminator/config.json")
    assert config["architectures"] == ["ElectraForPreTraining"]
    assert {k: config[k] for k in ("vocab_size", "hidden_size", "num_attention_heads")} == {
        k: electra_config("ElectraForPreTraining")[k]
        for k in ("vocab_size", "hidden_size", "num_attention_heads")}
    assert io.read_text(f"{out}/discriminator/vocab.txt") == io.read_text(vocab)
    with pytest.raises(UserError, match="already holds model.safetensors; pass --overwrite"):
        convert_to_hf(f"{ram}/ours", out)


def _read(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def test_tf_model_h5_is_read_through_gfile(ram):
    """tf_model.h5 (transformers' TF layout) read from ram:// gives the tensor it holds."""
    value = np.arange(8, dtype=np.float32)
    buffer = BytesIO()
    with h5py.File(buffer, "w") as f:
        f["tf_electra_model/electra/embeddings/LayerNorm/gamma:0"] = value
    io.write_bytes(f"{ram}/h5/tf_model.h5", buffer.getvalue())
    tensors, path = hf.read_tensors(f"{ram}/h5")
    assert path == f"{ram}/h5/tf_model.h5"
    assert list(tensors) == ["electra.embeddings.LayerNorm.weight"]
    assert np.array_equal(tensors["electra.embeddings.LayerNorm.weight"], value)


def test_missing_checkpoint_on_ram_is_one_line(ram):
    missing = f"{ram}/nonexistent/model.ckpt"
    with pytest.raises(UserError, match=rf"^--tf1_checkpoint={missing}: no such checkpoint"):
        convert_from_tf1(missing, f"{ram}/ours")
    with pytest.raises(UserError, match=rf"^--hf_dir={ram}/nonexistent: not an HF model"):
        convert_from_hf(f"{ram}/nonexistent", f"{ram}/ours")
    # A damaged weights file names the file.
    io.write_json(f"{ram}/bad/config.json", electra_config("ElectraForPreTraining"))
    io.write_bytes(f"{ram}/bad/model.safetensors", b"not safetensors")
    with pytest.raises(UserError, match=rf"^{ram}/bad/model.safetensors: not a readable "
                                        "safetensors file"):
        convert_from_hf(f"{ram}/bad", f"{ram}/ours")
    assert json.loads(io.read_text(f"{ram}/bad/config.json"))["model_type"] == "electra"
    # An output filesystem that cannot be reached (a scheme without a plugin; gs:// without
    # credentials fails the same way) names --output_dir.
    prefix = tf1.write_tf1_checkpoint(
        numpy_electra.random_weights(tf1.tf1_variable_shapes(CONFIG), seed=0), f"{ram}/tf1")
    with pytest.raises(UserError, match=r"^--output_dir=nosuchfs://b/out: File system scheme "
                                        r"'nosuchfs' not implemented"):
        convert_from_tf1(prefix, "nosuchfs://b/out")
