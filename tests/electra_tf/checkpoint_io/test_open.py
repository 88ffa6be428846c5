"""checkpoint_io tells the three kinds of checkpoint apart (our pre-training, our fine-tuning, a
TF1 release) and rebuilds each with its configuration; the discriminator restores from any of
them; a model_dir of another architecture is refused on the architecture alone."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_io
from electra_tf.checkpoint_io import tf1
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from electra_tf.finetune.model import SequenceModel

CONFIG = ModelConfig(vocab_size=40, embedding_size=16, hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=1, intermediate_size=64, max_position_embeddings=24,
                     generator_hidden_size=0.5)
TASK = {"task": "t", "kind": "classification", "labels": ["a", "b", "c"], "max_seq_length": 12}


def _save(model, directory, task=None):
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 1).save(0)
    CONFIG.save(os.path.join(directory, "config.json"))
    if task:
        with open(os.path.join(directory, "finetune_task.json"), "w") as f:
            json.dump(task, f)


def _discriminator(backbone) -> dict:
    return {v.path.split("/", 1)[-1]: v.numpy() for v in backbone.weights}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """One checkpoint of each kind, all with the same discriminator weights."""
    root = tmp_path_factory.mktemp("kinds")
    pretrainer = checkpoint_io.build_pretrainer(CONFIG)
    rng = np.random.default_rng(0)
    for v in pretrainer.variables:
        v.assign(0.1 * rng.standard_normal(v.shape).astype(np.float32))
    _save(pretrainer, str(root / "pretraining"))
    finetuned = SequenceModel(CONFIG, num_labels=3)
    checkpoint_io.restore_discriminator(finetuned.backbone, str(root / "pretraining"))
    _save(finetuned, str(root / "finetuning"), TASK)
    released = tf1.write_tf1_checkpoint(tf1.model_tf1_values(pretrainer), str(root / "tf1"))
    return {checkpoint_io.PRETRAINING: str(root / "pretraining"),
            checkpoint_io.FINETUNING: str(root / "finetuning"), checkpoint_io.TF1: released,
            "weights": _discriminator(pretrainer.discriminator)}


@pytest.mark.parametrize("kind, head, model_part", [
    (checkpoint_io.PRETRAINING, "discriminator", "discriminator"),
    (checkpoint_io.FINETUNING, "classifier", "backbone"),
    (checkpoint_io.TF1, "discriminator", "discriminator")])
def test_each_kind_is_identified_and_opened(kinds, kind, head, model_part):
    path = kinds[kind]
    assert checkpoint_io.identify(checkpoint_io.resolve_prefix(path)) == kind
    assert checkpoint_io.model_config_of(path) == CONFIG
    opened = checkpoint_io.open_checkpoint(path)
    assert opened.config == CONFIG and opened.head == head
    assert opened.task == (TASK if kind == checkpoint_io.FINETUNING else None)
    weights = _discriminator(getattr(opened.model, model_part))
    assert weights.keys() == kinds["weights"].keys()
    for name, value in weights.items():
        np.testing.assert_array_equal(value, kinds["weights"][name], err_msg=name)


@pytest.mark.parametrize("kind", [checkpoint_io.PRETRAINING, checkpoint_io.FINETUNING,
                                  checkpoint_io.TF1])
def test_the_discriminator_restores_from_every_kind(kinds, kind):
    model = SequenceModel(CONFIG, num_labels=2)
    head_before = [v.numpy() for v in model.head.weights]
    checkpoint_io.restore_discriminator(model.backbone, kinds[kind])
    weights = _discriminator(model.backbone)
    assert all(np.array_equal(weights[n], kinds["weights"][n]) for n in kinds["weights"])
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(head_before, model.head.weights))


def test_pretrainer_weights_only_from_pre_training_or_tf1(kinds):
    model = checkpoint_io.build_pretrainer(CONFIG)
    for kind in (checkpoint_io.PRETRAINING, checkpoint_io.TF1):
        assert checkpoint_io.restore_weights(model, kinds[kind])
    with pytest.raises(UserError, match="does not fit this model"):
        checkpoint_io.restore_weights(model, kinds[checkpoint_io.FINETUNING])


def test_trained_sequence_length(kinds, tmp_path):
    assert checkpoint_io.open_checkpoint(kinds[checkpoint_io.FINETUNING]).max_seq_length == 12
    assert checkpoint_io.open_checkpoint(kinds[checkpoint_io.TF1]).max_seq_length is None
    opened = checkpoint_io.Opened(CONFIG, None, str(tmp_path / "ckpt-0"))
    assert opened.max_seq_length is None
    (tmp_path / "config.json").write_text(json.dumps({**CONFIG.to_dict(), "max_seq_length": 20}))
    assert opened.max_seq_length == 20  # a config.json of earlier versions
    (tmp_path / "objective.json").write_text(json.dumps({"max_seq_length": 16}))
    assert opened.max_seq_length == 16


def test_ensure_model_config_compares_the_architecture_only(tmp_path):
    directory = str(tmp_path)
    checkpoint_io.ensure_model_config(directory, CONFIG, write=True)
    assert ModelConfig.load(os.path.join(directory, "config.json")) == CONFIG
    tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), directory, 1).save(0)
    # A config.json of earlier versions also held the objective; other objective values match.
    old = {**CONFIG.to_dict(), "mask_prob": 0.25, "disc_weight": 10.0, "max_seq_length": 64}
    (tmp_path / "config.json").write_text(json.dumps(old))
    checkpoint_io.ensure_model_config(directory, CONFIG, write=True)
    assert json.loads((tmp_path / "config.json").read_text()) == old  # kept: a checkpoint exists
    wider = ModelConfig(**{**CONFIG.to_dict(), "hidden_size": 128})
    with pytest.raises(UserError, match=r"hidden_size=64 \(flags: 128\); use a new --model_dir"):
        checkpoint_io.ensure_model_config(directory, wider, write=True)


def test_bad_paths_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="--checkpoint=.*no such checkpoint"):
        checkpoint_io.open_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="--init_checkpoint=.*holds no checkpoint"):
        checkpoint_io.restore_discriminator(None, str(tmp_path))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=tf.Module()), str(tmp_path), 1).save(0)
    assert checkpoint_io.identify(checkpoint_io.resolve_prefix(str(tmp_path))) is None
    with pytest.raises(UserError, match="holds no ELECTRA discriminator"):
        checkpoint_io.restore_discriminator(None, str(tmp_path))
