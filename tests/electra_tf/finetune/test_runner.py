"""Fine-tuning end to end on small real-format files (TSV, CSV, CoNLL, TFDS mock data) with a
tiny pre-trained model: learning, results JSON, predictions, trials, predict-only runs, the
recipe's layer-wise learning rates and init-checkpoint restore."""

import csv
import json
import os
import re

import numpy as np
import pytest

from electra_tf import checkpoint_io
from electra_tf.cli import UserError
from electra_tf.finetune import model as model_lib
from electra_tf.finetune import registry, runner, tasks
from electra_tf.tokenization import Tokenizer
from electra_tf.training.results import EVAL_RESULTS_FILE
from tests.electra_tf.finetune.helpers import (
    finetune_options,
    sentiment_rows,
    tagged_sentences,
    tiny_config,
    write_conll,
    write_table,
)

SMALL = dict(max_seq_length=16, train_batch_size=16, eval_batch_size=16, log_every_steps=100)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_classification_trials_predictions_and_predict_only(tmp_path, vocab_file, pretrained_dir):
    train = write_table(tmp_path / "train.tsv", ["text", "label"], sentiment_rows(192, 0))
    dev = write_table(tmp_path / "dev.tsv", ["text", "label"], sentiment_rows(40, 1))
    test = write_table(tmp_path / "test.tsv", ["text"], [(t,) for t, _ in sentiment_rows(9, 2)])
    model_dir = str(tmp_path / "model")
    options = finetune_options(
        task="classification", train_file=train, dev_file=dev, test_file=test,
        vocab_file=vocab_file, init_checkpoint=pretrained_dir.path, model_dir=model_dir,
        num_trials=2, do_predict=True, learning_rate=3e-3, num_train_epochs=2, **SMALL)
    summary = runner.run(options)

    with open(os.path.join(model_dir, runner.RESULTS_FILE)) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    accuracies = [t["results"]["dev"]["accuracy"] for t in summary["trials"]]
    assert len(accuracies) == 2 and min(accuracies) >= 0.9, accuracies
    assert [(t["seed"], t["step"]) for t in summary["trials"]] == [(1, 24), (2, 24)]
    assert summary["mean"]["dev"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["best"]["results"]["dev"]["accuracy"] == max(accuracies)
    assert set(summary["mean"]["dev"]) == {"accuracy", "macro_f1", "mcc", "loss"}

    trial = os.path.join(model_dir, "trial_0")
    with open(os.path.join(trial, tasks.TASK_FILE)) as f:
        metadata = json.load(f)
    assert metadata["labels"] == ["neg", "pos"] and metadata["kind"] == "classification"
    assert os.path.exists(os.path.join(trial, "vocab.txt"))
    assert os.listdir(os.path.join(trial, "eval"))  # TensorBoard event file
    with open(os.path.join(trial, EVAL_RESULTS_FILE)) as f:
        eval_results = json.load(f)
    assert eval_results["latest"]["step"] == int(192 * 2 / 16)
    rows = read_tsv(os.path.join(trial, "test_predictions.tsv"))
    assert rows[0] == ["index", "prediction", "probability_neg", "probability_pos"]
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(9)]
    expected = [label for _, label in sentiment_rows(9, 2)]
    assert sum(r[1] == e for r, e in zip(rows[1:], expected)) >= 8
    for r in rows[1:]:
        assert float(r[2]) + float(r[3]) == pytest.approx(1.0, abs=1e-5)

    # A predict-only run from the trial's directory reproduces its dev scores exactly.
    again = runner.run(finetune_options(
        task="classification", dev_file=dev, vocab_file=vocab_file, model_dir=trial,
        do_train=False, **SMALL))
    assert again["trials"][0]["results"]["dev"] == pytest.approx(
        summary["trials"][0]["results"]["dev"])


def test_tagging_conll_span_f1(tmp_path, vocab_file, pretrained_dir):
    train = write_conll(tmp_path / "train.txt", tagged_sentences(160, 0))
    dev_sentences = tagged_sentences(24, 1)
    dev = write_conll(tmp_path / "dev.txt", dev_sentences)
    test_sentences = tagged_sentences(5, 2)
    test = write_conll(tmp_path / "test.txt", test_sentences, with_tags=False)
    model_dir = str(tmp_path / "model")
    summary = runner.run(finetune_options(
        task="tagging", train_file=train, dev_file=dev, test_file=test, vocab_file=vocab_file,
        init_checkpoint=pretrained_dir.path, model_dir=model_dir, do_predict=True,
        learning_rate=3e-3, num_train_epochs=2, eval_every_epochs=1, **SMALL))
    scores = summary["trials"][0]["results"]["dev"]
    assert set(scores) == {"precision", "recall", "f1", "accuracy", "loss"}
    assert scores["f1"] >= 0.9, scores
    # Evaluated after each epoch (10 steps of 16 sentences); the latest results come last.
    with open(os.path.join(model_dir, EVAL_RESULTS_FILE)) as f:
        eval_results = json.load(f)
    assert [h["step"] for h in eval_results["history"]] == [10, 20]
    assert eval_results["history"][-1]["dev"] == eval_results["latest"]["dev"] == scores
    with open(os.path.join(model_dir, "test_predictions.tsv"), encoding="utf-8") as f:
        blocks = f.read().strip("\n").split("\n\n")
    assert [[line.split("\t")[0] for line in block.split("\n")] for block in blocks] == [
        [w for w, _ in sentence] for sentence in test_sentences]
    predicted = [[line.split("\t")[1] for line in block.split("\n")] for block in blocks]
    assert sum(p == t for ps, s in zip(predicted, test_sentences)
               for p, (_, t) in zip(ps, s)) >= 0.9 * sum(len(s) for s in test_sentences)


def test_regression_csv_pairs(tmp_path, vocab_file, pretrained_dir):
    # Score = 1 when both texts carry the same sentiment, else 0.
    a, b = sentiment_rows(96, 3), sentiment_rows(96, 4)
    rows = [(x, y, float(lx == ly)) for (x, lx), (y, ly) in zip(a, b)]
    train = write_table(tmp_path / "train.csv", ["first", "second", "score"], rows[:80], ",")
    dev = write_table(tmp_path / "dev.csv", ["first", "second", "score"], rows[80:], ",")
    model_dir = str(tmp_path / "model")
    summary = runner.run(finetune_options(
        task="regression", train_file=train, dev_file=dev, test_file=dev,
        text_column="first", text_b_column="second", label_column="score",
        vocab_file=vocab_file, init_checkpoint=pretrained_dir.path, model_dir=model_dir,
        do_predict=True, max_train_steps=3, **SMALL))
    scores = summary["trials"][0]["results"]["dev"]
    assert set(scores) == {"pearson", "spearman", "loss"}
    assert all(np.isfinite(v) for v in scores.values())
    with open(os.path.join(model_dir, tasks.TASK_FILE)) as f:
        metadata = json.load(f)
    assert metadata["kind"] == "regression" and metadata["text_pairs"] is True
    rows = read_tsv(os.path.join(model_dir, "test_predictions.tsv"))
    assert rows[0] == ["index", "prediction"] and len(rows) == 17
    assert all(np.isfinite(float(r[1])) for r in rows[1:])


def test_glue_mnli_from_tfds_mock(tmp_path, vocab_file, pretrained_dir):
    tfds = pytest.importorskip("tensorflow_datasets")
    model_dir = str(tmp_path / "model")
    with tfds.testing.mock_data(num_examples=20):
        summary = runner.run(finetune_options(
            task="mnli", vocab_file=vocab_file, init_checkpoint=pretrained_dir.path,
            model_dir=model_dir, do_predict=True, max_train_steps=2, **SMALL))
    results = summary["trials"][0]["results"]
    assert set(results) == {"dev_matched", "dev_mismatched"}
    assert set(results["dev_matched"]) == {"accuracy", "loss"}
    for split in ("test_matched", "test_mismatched"):
        rows = read_tsv(os.path.join(model_dir, f"{split}_predictions.tsv"))
        assert len(rows) == 21
        assert {r[1] for r in rows[1:]} <= {"contradiction", "entailment", "neutral"}
    assert os.listdir(os.path.join(model_dir, "eval_dev_mismatched"))


def recipe_depth(path: str, num_layers: int) -> int:
    """docs/RECIPE.md: embeddings depth 0, encoder layer i depth i + 1, the task head L + 2."""
    layer = re.search(r"/layer_(\d+)/", path)
    if layer:
        return int(layer.group(1)) + 1
    return 0 if "/embeddings" in path else num_layers + 2


def test_layerwise_learning_rates_follow_the_recipe(tmp_path, vocab_file, pretrained_dir):
    train = write_table(tmp_path / "train.tsv", ["text", "label"], sentiment_rows(32, 5))
    options = finetune_options(
        task="classification", train_file=train, vocab_file=vocab_file,
        init_checkpoint=pretrained_dir.path, model_dir=str(tmp_path / "model"),
        weight_decay=0.0, warmup_proportion=0.0, **SMALL)
    task = registry.get_task("classification", options)
    task.prepare(options.model_dir, do_train=True)
    tokenizer = Tokenizer(vocab_file)
    config = runner.resolve_config(options, tokenizer)
    data = {"train": task.featurize(task.read("train"), tokenizer, 16)}
    hparams = runner.hyperparameters(options, task, config, 32)
    # The recipe's fine-tuning defaults for a model that is not "large".
    assert (hparams.learning_rate, hparams.layerwise_lr_decay) == (1e-4, 0.8)
    strategy = runner.distribute.create_strategy("one_device")
    trial = runner.TrialRunner(options, task, config, strategy, data, options.model_dir, seed=3)
    trainer = trial.build_trainer(hparams)
    variables = trainer.model.trainable_variables
    before = [v.numpy() for v in variables]
    trainer.train(1)
    optimizer = trainer.optimizer
    depths = set()
    for i, variable in enumerate(variables):
        # After the first AdamW step (no bias correction, no weight decay here) the update was
        # lr * multiplier * m / (sqrt(v) + eps); dividing it out leaves the variable's lr.
        direction = optimizer._m[i].numpy() / (np.sqrt(optimizer._v[i].numpy()) + 1e-6)
        step = before[i] - variable.numpy()
        usable = np.abs(direction) > 0.5  # float32 differences of tiny updates are too coarse
        if not usable.any():
            continue
        applied_lr = np.median(step[usable] / direction[usable])
        depth = recipe_depth(variable.path, config.num_hidden_layers)
        expected = 1e-4 * 0.8 ** (config.num_hidden_layers + 2 - depth)
        assert applied_lr == pytest.approx(expected, rel=0.01), variable.path
        depths.add(depth)
    assert depths == {0, 1, 2, 4}


def test_recipe_defaults_for_large_and_rte():
    large = tiny_config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16)
    task = registry.get_task("rte", finetune_options(task="rte"))
    hparams = runner.hyperparameters(finetune_options(), task, large, 2490)
    assert (hparams.learning_rate, hparams.layerwise_lr_decay) == (5e-5, 0.9)
    assert hparams.num_train_epochs == 10.0
    assert hparams.num_train_steps == int(2490 * 10 / 32)
    assert hparams.num_warmup_steps == int(hparams.num_train_steps * 0.1)


def test_init_checkpoint_restores_the_discriminator(pretrained_dir):
    model = model_lib.SequenceModel(pretrained_dir.config, 3)
    head_before = [w.numpy() for w in model.head.weights]
    checkpoint_io.restore_discriminator(model.backbone, pretrained_dir.path)
    restored = {v.path: v.numpy() for v in model.backbone.weights}
    assert restored.keys() == pretrained_dir.weights.keys()
    for path, value in restored.items():
        np.testing.assert_array_equal(value, pretrained_dir.weights[path], err_msg=path)
    for before, after in zip(head_before, model.head.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_init_checkpoint_of_another_architecture(tmp_path, pretrained_dir):
    # Without config.json the sizes come from --model_size; the shapes must still fit.
    wider = model_lib.SequenceModel(tiny_config(hidden_size=48, num_attention_heads=2), 2)
    with pytest.raises(UserError, match="does not fit this model"):
        checkpoint_io.restore_discriminator(wider.backbone, pretrained_dir.path)
    deeper = model_lib.SequenceModel(tiny_config(num_hidden_layers=3), 2)
    with pytest.raises(UserError, match="does not fit this model"):
        checkpoint_io.restore_discriminator(deeper.backbone, pretrained_dir.path)
