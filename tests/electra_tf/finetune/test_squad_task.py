"""--task=squad / squadv1 through the fine-tuning runner: a tiny model learns the SQuAD-format
sample it trains on, evaluation writes official-format predictions and the v2.0 threshold."""

import json
import os

import pytest
import tensorflow as tf

from electra_tf import checkpoint_io
from electra_tf.cli import UserError
from electra_tf.export import saved_model
from electra_tf.finetune import registry, runner, tasks
from electra_tf.finetune.squad import reader as squad
from electra_tf.finetune.squad import task as squad_task
from electra_tf.tokenization import Tokenizer
from tests.electra_tf.finetune import squad_fixtures
from tests.electra_tf.finetune.helpers import finetune_options, tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("squad_task")
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(squad_fixtures.vocab()) + "\n", encoding="utf-8")
    return str(vocab), squad_fixtures.squad_file(directory / "train.json")


def options_for(tmp_path, vocab, train, **values):
    return finetune_options(
        vocab_file=vocab, model_dir=str(tmp_path / "model"), train_file=train, dev_file=train,
        max_seq_length=48, doc_stride=16, max_query_length=12, n_best_size=5,
        max_answer_length=8, train_batch_size=8, eval_batch_size=16, learning_rate=3e-3,
        layerwise_lr_decay=1.0, warmup_proportion=0.0, log_every_steps=20, **values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """A squad (2.0) run of 80 epochs on the 6-question sample (train = dev)."""
    vocab, train = data
    tmp_path = tmp_path_factory.mktemp("squad_run")
    config = tiny_config(vocab_size=len(squad_fixtures.vocab()), max_position_embeddings=48,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner.config_lib, "model_preset", lambda *a, **k: config)
        summary = runner.run(options_for(tmp_path, vocab, train, task="squad",
                                         num_train_epochs=80))
    return summary, str(tmp_path / "model"), config


def test_squad_v2_learns_its_training_sample(trained):
    summary, model_dir, _ = trained
    dev = summary["mean"]["dev"]
    predictions = json.load(open(os.path.join(model_dir, "dev_predictions.json")))
    null_odds = json.load(open(os.path.join(model_dir, "dev_null_odds.json")))
    nbest = json.load(open(os.path.join(model_dir, "dev_nbest_predictions.json")))
    assert set(predictions) == set(null_odds) == set(nbest) == {f"q{i}" for i in range(1, 7)}
    # Memorizing 6 questions: most answers exact, the unanswerable one abstained.
    assert dev["exact"] >= 80.0 and dev["f1"] >= dev["exact"]
    assert predictions["q6"] == ""
    assert squad_task.load_null_threshold(model_dir) == dev["null_threshold"]
    assert dev["HasAns_exact"] >= 80.0 and dev["NoAns_exact"] == 100.0
    metadata = tasks.load_task_metadata(model_dir)
    assert metadata["kind"] == "span" and metadata["version"] == 2


def test_exported_signature_answers_like_fine_tuning(trained, data, tmp_path):
    """The export tool on the fine-tuned model_dir: head, window length (48) and the v2.0
    null threshold all come from the directory."""
    summary, model_dir, config = trained
    vocab, train = data
    assert checkpoint_io.open_checkpoint(model_dir).head == "qa"
    path = saved_model.export_saved_model(model_dir, vocab, str(tmp_path / "export"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    examples = squad.read_squad_json(train, version=2)[0]
    nbest = json.load(open(os.path.join(model_dir, "dev_nbest_predictions.json")))
    null_odds = json.load(open(os.path.join(model_dir, "dev_null_odds.json")))
    final = json.load(open(os.path.join(model_dir, "dev_predictions.json")))
    out = serve(question=tf.constant([e.question for e in examples]),
                context=tf.constant([e.context for e in examples]))
    for i, example in enumerate(examples):
        answer = out["answer"][i].numpy().decode("utf-8")
        start, end = int(out["start"][i]), int(out["end"][i])
        assert answer == final[example.qas_id]
        assert float(out["no_answer_score"][i]) == pytest.approx(null_odds[example.qas_id],
                                                                 abs=1e-4)
        if answer:
            best = nbest[example.qas_id][0]
            assert (start, end) == (best["start"], best["end"])
            assert example.context[start:end] == answer
            assert float(out["score"][i]) == pytest.approx(best["score"], abs=1e-3)
        else:
            assert (start, end) == (-1, -1)
    # An empty context is answered with "" rather than failing the request.
    empty = serve(question=tf.constant(["Who?"]), context=tf.constant([""]))
    assert empty["answer"].numpy().tolist() == [b""] and int(empty["start"][0]) == -1


def test_squadv1_rejects_unanswerable_data(tmp_path, data):
    vocab, train = data
    with pytest.raises(UserError, match="use --task=squad instead"):
        runner.run(options_for(tmp_path, vocab, train, task="squadv1", max_train_steps=1))


def test_tfds_mock_data_through_the_task(tmp_path, data):
    tfds = pytest.importorskip("tensorflow_datasets")
    vocab, _ = data
    options = finetune_options(task="squadv1", vocab_file=vocab, model_dir=str(tmp_path),
                               max_seq_length=64, doc_stride=16, max_query_length=16)
    task = registry.get_task("squadv1", options)
    assert task.has_split("train") and task.has_split("dev") and not task.has_split("test")
    with tfds.testing.mock_data(num_examples=4):
        examples = task.read("dev")
    features = task.featurize(examples, Tokenizer(vocab), 64)
    windows = features.arrays["input_ids"]
    assert len(examples) == 4 and windows.shape[1] == 64
    assert len(features.examples) == len(windows) >= 4
    assert {e.qas_id for e in examples} == set(features.examples)


def test_unset_sequence_length_is_512_for_qa_and_128_otherwise(tmp_path):
    # The options resolve the task's own length once (tasks no longer set it on the options).
    for name, want in (("squad", 512), ("squadv1", 512), ("classification", 128)):
        options = finetune_options(task=name, train_file="train.json", model_dir=str(tmp_path))
        task = registry.get_task(name, options)
        assert options.max_seq_length == want
        if name.startswith("squad"):
            assert task.window.max_seq_length == want
    given = finetune_options(task="squad", max_seq_length=384, model_dir=str(tmp_path))
    assert registry.get_task("squad", given).window.max_seq_length == 384
