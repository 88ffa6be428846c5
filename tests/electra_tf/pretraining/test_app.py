"""Tests of the pre-training application (electra_tf/pretraining/app.py) in process, from
PretrainOptions: what model_dir records, what a resumed run may change, and option checks.
The command line itself is tested in tests/electra_tf/training/test_run_pretraining.py."""

import dataclasses
import json

import pytest

from electra_tf.cli import UserError
from electra_tf.config import CONFIG_FILE
from electra_tf.pretraining import app
from electra_tf.pretraining.options import PretrainOptions
from tests.electra_tf.training.helpers import write_shards, write_vocab

TINY = dict(model_size="demo", hidden_size=16, embedding_size=8, num_hidden_layers=1,
            num_attention_heads=1, intermediate_size=32, max_seq_length=16,
            generator_hidden_size=0.5, train_batch_size=8, num_eval_steps=2,
            learning_rate=1e-3, num_warmup_steps=2, steps_per_loop=2,
            save_checkpoints_steps=2)


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    return PretrainOptions(
        train_files=write_shards(str(root / "train"), num_files=2, examples_per_file=32,
                                 seq_length=16),
        eval_files=write_shards(str(root / "eval"), num_files=1, examples_per_file=16,
                                seq_length=16, seed=7),
        vocab_file=write_vocab(str(root / "vocab.txt")), model_dir=str(root / "model"),
        num_train_steps=2, **TINY)


def test_model_dir_records_the_architecture_and_the_objective_and_resumes_with_a_new_one(
        options, tmp_path):
    options = dataclasses.replace(options, model_dir=str(tmp_path / "m"))
    assert app.run(options).step == 2
    model = options.model_config(vocab_size=50)
    assert json.load(open(tmp_path / "m" / CONFIG_FILE)) == model.to_dict()
    assert json.load(open(tmp_path / "m" / app.OBJECTIVE_FILE)) == {
        "max_seq_length": 16, "mask_prob": 0.15, "gen_weight": 1.0, "disc_weight": 50.0,
        "temperature": 1.0}

    # Another objective is the same model: the run resumes, and records what it trains with.
    resumed = app.run(dataclasses.replace(options, disc_weight=10.0, num_train_steps=4))
    assert resumed.step == 4
    assert json.load(open(tmp_path / "m" / app.OBJECTIVE_FILE))["disc_weight"] == 10.0
    assert json.load(open(tmp_path / "m" / CONFIG_FILE)) == model.to_dict()

    # Another architecture is not.
    with pytest.raises(UserError, match=r"different model: hidden_size=16 \(flags: 32\)"):
        app.run(dataclasses.replace(options, hidden_size=32, num_train_steps=6))


@pytest.mark.parametrize("change, message", [
    (dict(num_train_steps=0), "--num_train_steps=0 must be positive"),
    (dict(num_attention_heads=3), "model flags: hidden_size=16 is not a multiple"),
    (dict(mask_prob=1.5), "model flags: mask_prob=1.5"),
    (dict(eval_files="", train_files="/nonexistent/*"), "no files match --train_files"),
])
def test_bad_options_are_one_line_user_errors(options, change, message):
    with pytest.raises(UserError, match=message):
        app.open_inputs(dataclasses.replace(options, **change))


def test_held_out_shards_must_not_be_training_shards(options):
    with pytest.raises(UserError, match="must be held out"):
        app.open_inputs(dataclasses.replace(options, eval_files=options.train_files))
