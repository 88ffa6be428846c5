"""The original TF1 checkpoint layout (docs/RECIPE.md "Checkpoint variable names"): names and
shapes, size inference, import parity against an independent NumPy forward pass, round trip,
converter CLI and bad input; and a release-like checkpoint written by TensorFlow's own TF1
machinery (tf.compat.v1 variables saved by tf.compat.v1.train.Saver, global_step 4,000,000, no
Adam slots) imported for fine-tuning, for continued pre-training through the application, and
against the NumPy forward pass."""

import contextlib
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_io
from electra_tf.checkpoint_io import build_pretrainer, tf1
from electra_tf.checkpoint_io.convert import convert_from_tf1, convert_to_tf1
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig, model_preset
from electra_tf.finetune.model import SequenceModel
from electra_tf.pretraining import app
from electra_tf.pretraining.options import PretrainOptions
from tests.electra_tf.checkpoint_io import numpy_electra
from tests.electra_tf.modeling.test_variable_names import expected_tower
from tests.electra_tf.training.helpers import write_shards, write_vocab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
# Small, but with every structural case: E != H (embeddings_project in both towers), two
# attention heads in the discriminator, a narrower one-head generator.
CONFIG = ModelConfig(vocab_size=60, embedding_size=16, hidden_size=128, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=96, max_position_embeddings=24,
                     generator_hidden_size=0.25)


def _write(directory, config, seed=0, extra_slots=True):
    """A TF1-layout checkpoint with random values, global_step and (optionally) Adam slots."""
    weights = numpy_electra.random_weights(tf1.tf1_variable_shapes(config), seed)
    values = dict(weights)
    if extra_slots:
        for name in list(weights)[:5]:
            values[f"{name}/adam_m"] = np.ones_like(weights[name])
            values[f"{name}/adam_v"] = np.ones_like(weights[name])
    prefix = tf1.write_tf1_checkpoint(values, str(directory))
    return prefix, weights


def _features(batch=3, length=12, vocab=CONFIG.vocab_size, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, length))
    mask = np.ones((batch, length), np.int64)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    segments = np.zeros((batch, length), np.int64)
    segments[:, 5:] = 1
    return ids, mask * 1, segments * mask


@pytest.fixture(scope="module")
def tf1_checkpoint(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("tf1"), CONFIG)


def test_name_table_is_exactly_the_models_variables():
    for config in (CONFIG, dataclasses.replace(CONFIG, embedding_size=128),
                   dataclasses.replace(CONFIG, generator_hidden_size=1.0)):
        named = tf1.model_tf1_variables(build_pretrainer(config))
        assert {n: tuple(v.shape) for n, v in named.items()} == tf1.tf1_variable_shapes(config)


def test_name_table_has_the_released_layout():
    small = tf1.tf1_variable_shapes(model_preset("small", generator_hidden_size=1.0))
    assert small["electra/embeddings/word_embeddings"] == (30522, 128)
    assert small["electra/embeddings_project/kernel"] == (128, 256)
    assert small["generator/embeddings_project/kernel"] == (128, 256)
    assert small["generator/encoder/layer_11/output/dense/kernel"] == (1024, 256)
    assert small["generator_predictions/dense/kernel"] == (256, 128)
    assert small["discriminator_predictions/dense_1/kernel"] == (256, 1)
    base = tf1.tf1_variable_shapes(model_preset("base"))
    assert "electra/embeddings_project/kernel" not in base
    assert base["generator/embeddings_project/kernel"] == (768, 256)
    assert base["electra/encoder/layer_11/intermediate/dense/kernel"] == (768, 3072)


@pytest.mark.parametrize("name, overrides", [
    ("small", {}), ("small", {"generator_hidden_size": 1.0}), ("base", {}), ("large", {})])
def test_sizes_are_inferred_from_shapes(name, overrides):
    config = model_preset(name, **overrides)
    inferred = tf1.infer_config(tf1.tf1_variable_shapes(config))
    fields = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
              "num_attention_heads", "intermediate_size", "max_position_embeddings")
    for got, want in ((inferred, config),
                      (inferred.generator(), config.generator())):
        assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
    assert tf1.tf1_variable_shapes(inferred) == tf1.tf1_variable_shapes(config)


def test_import_matches_numpy_forward_pass(tf1_checkpoint):
    prefix, weights = tf1_checkpoint
    model = build_pretrainer(CONFIG)
    restored = tf1.restore_tf1(model, prefix)
    assert "global_step" not in restored and not any("adam" in n for n in restored)
    assert set(restored) == set(weights)
    ids, mask, segments = _features()
    features = {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
                "segment_ids": tf.constant(segments, tf.int32)}
    disc = model.discriminator_head(model.discriminator(features)).numpy()
    gen = model.generator_head(model.generator(features),
                               model.embeddings.word_embeddings).numpy()
    w64 = {name: value.astype(np.float64) for name, value in weights.items()}
    gen_heads = CONFIG.generator().num_attention_heads
    want_disc = numpy_electra.discriminator_logits(w64, ids, mask, segments,
                                                   CONFIG.num_attention_heads)
    want_gen = numpy_electra.generator_logits(w64, ids, mask, segments, gen_heads)
    disc_diff, gen_diff = np.abs(disc - want_disc).max(), np.abs(gen - want_gen).max()
    print(f"parity: discriminator logits max |diff| {disc_diff:.2e} (|logit| <= "
          f"{np.abs(want_disc).max():.2f}), generator logits max |diff| {gen_diff:.2e} "
          f"(|logit| <= {np.abs(want_gen).max():.2f})")
    assert disc_diff <= 1e-5 and gen_diff <= 1e-5
    # The comparison is not vacuous: logits vary across tokens.
    assert want_disc.std() > 0.1 and want_gen.std() > 0.1


def test_round_trip_tf1_ours_tf1_is_value_identical(tf1_checkpoint, tmp_path):
    prefix, weights = tf1_checkpoint
    ours = convert_from_tf1(prefix, str(tmp_path / "ours"))
    assert ModelConfig.load(str(tmp_path / "ours" / "config.json")).hidden_size == 128
    back = convert_to_tf1(str(tmp_path / "ours"), str(tmp_path / "back"))
    assert tf.train.latest_checkpoint(str(tmp_path / "back")) == back
    values = tf1.read_tf1_checkpoint(back)
    assert sorted(values) == sorted(weights)
    for name, value in weights.items():
        assert values[name].dtype == value.dtype and np.array_equal(values[name], value), name
    assert tf.train.load_checkpoint(back).get_tensor("global_step") == 0
    assert not tf1.is_tf1_checkpoint(ours)


def test_continued_pretraining_and_finetuning_take_a_tf1_prefix(tf1_checkpoint):
    prefix, weights = tf1_checkpoint
    model = build_pretrainer(CONFIG)
    checkpoint_io.restore_weights(model, prefix)
    np.testing.assert_array_equal(model.generator_head.output_bias.numpy(),
                                  weights["generator_predictions/output_bias"])
    # A fine-tuning model takes the discriminator and leaves its task head at its init.
    task = SequenceModel(CONFIG, num_labels=3)
    head_before = [v.numpy() for v in task.head.variables]
    checkpoint_io.restore_discriminator(task.backbone, prefix)
    np.testing.assert_array_equal(
        task.backbone.encoder.layers[1].query.kernel.numpy(),
        weights["electra/encoder/layer_1/attention/self/query/kernel"])
    for before, after in zip(head_before, task.head.variables):
        np.testing.assert_array_equal(before, after.numpy())


def test_full_size_generator_converts_without_flags(tmp_path):
    config = dataclasses.replace(CONFIG, hidden_size=64, num_attention_heads=1,
                                 generator_hidden_size=1.0)
    prefix, weights = _write(tmp_path / "tf1", config, seed=3, extra_slots=False)
    convert_from_tf1(prefix, str(tmp_path / "ours"))
    loaded = checkpoint_io.open_checkpoint(str(tmp_path / "ours"))
    assert loaded.config.generator().hidden_size == 64
    values = tf1.model_tf1_values(loaded.model)
    assert all(np.array_equal(values[n], weights[n]) for n in weights)


def test_size_mismatch_is_one_line_listing_variables(tf1_checkpoint):
    prefix, _ = tf1_checkpoint
    other = dataclasses.replace(CONFIG, num_hidden_layers=3, intermediate_size=64)
    with pytest.raises(UserError) as error:
        tf1.restore_tf1(build_pretrainer(other), prefix)
    message = str(error.value)
    assert "\n" not in message
    assert "electra/encoder/layer_0/intermediate/dense/kernel [128,64] vs [128,96]" in message
    # 6 FFN shape conflicts + layer_2 of both towers absent (2 x 16) = 38 differences, 8 listed.
    assert "and 30 more" in message
    assert "layers=2" in message and "layers=3" in message


@pytest.mark.parametrize("make_path", [
    lambda tmp: str(tmp / "missing" / "model.ckpt"),
    lambda tmp: str(tmp),
    lambda tmp: (tmp / "junk.index").write_bytes(b"not a checkpoint") and str(tmp / "junk"),
])
def test_bad_checkpoint_paths_are_user_errors(tmp_path, make_path):
    with pytest.raises(UserError):
        convert_from_tf1(make_path(tmp_path), str(tmp_path / "out"))


def test_existing_output_is_refused(tf1_checkpoint, tmp_path):
    prefix, _ = tf1_checkpoint
    convert_from_tf1(prefix, str(tmp_path))
    with pytest.raises(UserError, match="--overwrite"):
        convert_from_tf1(prefix, str(tmp_path))


def test_converter_cli(tf1_checkpoint, tmp_path):
    prefix, _ = tf1_checkpoint
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    ok = subprocess.run([sys.executable, "-m", "electra_tf.convert_checkpoint",
                         f"--tf1_checkpoint={prefix}", f"--output_dir={tmp_path}"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "hidden=128 layers=2" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "electra_tf.convert_checkpoint",
                          f"--tf1_checkpoint={tmp_path}/nope", f"--output_dir={tmp_path}/x"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------------------------
# A checkpoint written by TensorFlow's own TF1 machinery (graph, variable scopes, Saver), with
# the released layout of docs/RECIPE.md "Checkpoint variable names": global_step 4,000,000 and
# no Adam slots, as in the released files. Nothing of the project writes it.

SAVER_SIZES = dict(vocab_size=60, embedding_size=16, hidden_size=128, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=96, max_position_embeddings=512)
SAVER_GENERATOR = dict(hidden_size=32, num_attention_heads=1, intermediate_size=128,
                       num_hidden_layers=2)
RELEASED_STEP = 4_000_000


def _released_shapes():
    """The recipe's name list written out by hand: both towers (the generator 32 wide, FFN 4 x
    32, one 64-wide head at most), the shared embeddings once, both heads."""
    shapes = expected_tower("electra", 60, 16, 128, 2, 96, 512, with_embeddings=True)
    shapes.update(expected_tower("generator", 60, 16, 32, 2, 128, 512, with_embeddings=False))
    shapes.update({
        "generator_predictions/dense/kernel": (32, 16),
        "generator_predictions/dense/bias": (16,),
        "generator_predictions/LayerNorm/gamma": (16,),
        "generator_predictions/LayerNorm/beta": (16,),
        "generator_predictions/output_bias": (60,),
        "discriminator_predictions/dense/kernel": (128, 128),
        "discriminator_predictions/dense/bias": (128,),
        "discriminator_predictions/dense_1/kernel": (128, 1),
        "discriminator_predictions/dense_1/bias": (1,),
    })
    return shapes


@pytest.fixture(scope="module")
def saver_checkpoint(tmp_path_factory):
    """(prefix, weights) of a checkpoint saved by tf.compat.v1.train.Saver in graph mode."""
    directory = str(tmp_path_factory.mktemp("released"))
    weights = numpy_electra.random_weights(_released_shapes(), seed=5)
    graph = tf.compat.v1.Graph()
    with graph.as_default():
        for name, value in weights.items():
            *scopes, leaf = name.split("/")
            with contextlib.ExitStack() as stack:
                for scope in scopes:
                    stack.enter_context(tf.compat.v1.variable_scope(scope))
                tf.compat.v1.get_variable(
                    leaf, shape=value.shape, dtype=tf.float32,
                    initializer=tf.compat.v1.constant_initializer(value))
        global_step = tf.compat.v1.train.get_or_create_global_step()
        set_step = global_step.assign(RELEASED_STEP)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(set_step)
            prefix = saver.save(session, os.path.join(directory, "model.ckpt"),
                                global_step=global_step)
    # What the file holds, read back with TensorFlow's reader: exactly the released names.
    listed = dict(tf.train.list_variables(prefix))
    assert prefix.endswith(f"model.ckpt-{RELEASED_STEP}")
    assert tf.train.load_checkpoint(prefix).get_tensor("global_step") == RELEASED_STEP
    assert {n: tuple(s) for n, s in listed.items() if n != "global_step"} == _released_shapes()
    assert not any("adam" in name for name in listed)
    return prefix, weights


def _tf1_value(weights, path):
    """The checkpoint value whose TF1 name ends the Keras variable path."""
    names = [n for n in weights if path.split(":")[0].endswith("/" + n) or path == n]
    assert len(names) == 1, (path, names)
    return weights[names[0]]


def test_tf1_saver_checkpoint_imports_for_finetuning(saver_checkpoint):
    prefix, weights = saver_checkpoint
    assert checkpoint_io.identify(prefix) == checkpoint_io.TF1
    for path in (prefix, os.path.dirname(prefix)):  # a prefix, or the directory of the release
        config = checkpoint_io.model_config_of(path)
        assert {k: getattr(config, k) for k in SAVER_SIZES} == SAVER_SIZES
        assert {k: getattr(config.generator(), k) for k in SAVER_GENERATOR} == SAVER_GENERATOR

    task = SequenceModel(config, num_labels=3)
    head_before = [v.numpy() for v in task.head.variables]
    checkpoint_io.restore_discriminator(task.backbone, os.path.dirname(prefix))
    assert len(task.backbone.variables) == sum(n.startswith("electra/") for n in weights)
    for variable in task.backbone.variables:
        np.testing.assert_array_equal(variable.numpy(), _tf1_value(weights, variable.path),
                                      err_msg=variable.path)
    for before, after in zip(head_before, task.head.variables):
        np.testing.assert_array_equal(before, after.numpy())

    opened = checkpoint_io.open_checkpoint(prefix)
    assert opened.task is None and opened.config == config
    assert len(opened.model.variables) == len(weights)
    for variable in opened.model.variables:
        np.testing.assert_array_equal(variable.numpy(), _tf1_value(weights, variable.path),
                                      err_msg=variable.path)


def test_tf1_saver_checkpoint_matches_numpy_forward_pass(saver_checkpoint):
    prefix, weights = saver_checkpoint
    model = checkpoint_io.open_checkpoint(prefix).model
    ids, mask, segments = _features(vocab=60, length=16, seed=4)
    features = {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
                "segment_ids": tf.constant(segments, tf.int32)}
    w64 = {name: value.astype(np.float64) for name, value in weights.items()}
    disc = model.discriminator_head(model.discriminator(features)).numpy()
    gen = model.generator_head(model.generator(features),
                               model.embeddings.word_embeddings).numpy()
    want_disc = numpy_electra.discriminator_logits(w64, ids, mask, segments, num_heads=2)
    want_gen = numpy_electra.generator_logits(w64, ids, mask, segments, num_heads=1)
    real = mask.astype(bool)
    disc_diff = np.abs(disc - want_disc)[real].max()
    gen_diff = np.abs(gen - want_gen)[real].max()
    print(f"Saver checkpoint parity: discriminator max |diff| {disc_diff:.2e}, generator "
          f"{gen_diff:.2e}")
    assert disc_diff <= 1e-5 and gen_diff <= 1e-5, (disc_diff, gen_diff)
    assert want_disc[real].std() > 0.1 and want_gen[real].std() > 0.1


def test_continued_pretraining_from_a_release_starts_at_step_zero(saver_checkpoint, tmp_path):
    """--init_checkpoint of a release: weights only. The run counts its own steps from 0 and its
    schedule is its own (the release's global_step 4,000,000 is not read): with
    num_train_steps=2 and no warmup, lr is peak at step 0 and peak / 2 at step 1, so the weights
    move (a schedule at step 4,000,000 of 2 would be 0 and move nothing)."""
    prefix, weights = saver_checkpoint
    peak = 1e-3
    options = PretrainOptions(
        train_files=write_shards(str(tmp_path / "train"), num_files=1, examples_per_file=32,
                                 seq_length=16, vocab_size=60),
        vocab_file=write_vocab(str(tmp_path / "vocab.txt"), vocab_size=60),
        model_dir=str(tmp_path / "model"), init_checkpoint=prefix, model_size="demo",
        hidden_size=128, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=96, generator_hidden_size=0.25, max_seq_length=16,
        train_batch_size=8, num_train_steps=2, learning_rate=peak, num_warmup_steps=0,
        steps_per_loop=2, save_checkpoints_steps=2)
    result = app.run(options)
    assert result.step == 2
    trained = checkpoint_io.open_checkpoint(options.model_dir).model
    moved = []
    for variable in trained.variables:
        delta = np.abs(variable.numpy() - _tf1_value(weights, variable.path)).max()
        # AdamW without bias correction moves a weight by at most about lr * 3.2 at step 0 and
        # lr * 6 at step 1 (m / sqrt(v) of one or two gradients), plus weight decay.
        assert delta <= 10 * peak, (variable.path, delta)
        moved.append(delta > 0)
    assert np.mean(moved) > 0.9
