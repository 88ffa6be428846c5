"""Fixtures of the fine-tuning tests: the tiny vocabulary file and a tiny pre-trained model_dir."""

import os
import types

import pytest

from tests.electra_tf.finetune.helpers import VOCAB, tiny_config


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory):
    """A pre-training model_dir (ElectraPretrainer checkpoint + config.json) of the tiny sizes."""
    import keras
    import tensorflow as tf

    from electra_tf.config import ObjectiveConfig
    from electra_tf.pretraining.objective import ElectraPretrainer
    directory = str(tmp_path_factory.mktemp("pretrained"))
    config = tiny_config()
    keras.utils.set_random_seed(7)
    model = ElectraPretrainer(config, ObjectiveConfig(max_seq_length=16), seed=7, mask_id=4,
                              cls_id=2, sep_id=3, pad_id=0)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory,
                               max_to_keep=1).save(checkpoint_number=100)
    config.save(os.path.join(directory, "config.json"))
    weights = {v.path: v.numpy() for v in model.discriminator.weights}
    return types.SimpleNamespace(path=directory, config=config, weights=weights,
                                 generator={v.path: v.numpy() for v in model.generator.weights})
