"""Fine-tuning with every path on TensorFlow's in-memory filesystem (ram://), which no open() or
os call can reach: data files, vocabulary, the pre-trained --init_checkpoint and model_dir.
Results, checkpoints and predictions must appear on ram://, and nothing on the local disk (the
tests run in an empty directory, where a path written with open() or os.makedirs would appear as
"ram:/..."). Bad input on such a path is one error line naming it."""

import csv
import json
import os
import subprocess
import sys
import uuid

import pytest
import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.finetune import conll, glue, runner, tasks
from electra_tf.finetune.squad import reader as squad_reader
from electra_tf.training.results import EVAL_RESULTS_FILE
from tests.electra_tf.finetune.helpers import finetune_options, sentiment_rows

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


@pytest.fixture()
def ram(tmp_path, monkeypatch):
    """A fresh ram:// root; the local working directory must stay empty."""
    monkeypatch.chdir(tmp_path)
    yield f"ram://{uuid.uuid4().hex}"
    assert os.listdir(tmp_path) == []


def _table(path: str, header: list, rows: list) -> str:
    io.write_text(path, "".join("\t".join(map(str, r)) + "\n" for r in [header, *rows]))
    return path


def _copy_dir(source: str, target: str) -> str:
    for name in os.listdir(source):
        io.copy_file(os.path.join(source, name), io.join(target, name))
    return target


def test_classification_with_every_path_on_ram(ram, vocab_file, pretrained_dir):
    train = _table(f"{ram}/data/train.tsv", ["text", "label"], sentiment_rows(32, 0))
    dev = _table(f"{ram}/data/dev.tsv", ["text", "label"], sentiment_rows(12, 1))
    test = _table(f"{ram}/data/test.tsv", ["text"], [(t,) for t, _ in sentiment_rows(5, 2)])
    vocab = f"{ram}/vocab.txt"
    io.copy_file(vocab_file, vocab)
    init = _copy_dir(pretrained_dir.path, f"{ram}/pretrained")
    model_dir = f"{ram}/model"
    small = dict(max_seq_length=16, train_batch_size=16, eval_batch_size=8, log_every_steps=100)
    summary = runner.run(finetune_options(
        task="classification", text_column="text", label_column="label", train_file=train,
        dev_file=dev, test_file=test, vocab_file=vocab, init_checkpoint=init,
        model_dir=model_dir, do_predict=True, num_train_epochs=1, **small))

    # 32 examples, one epoch, batch 16: two steps.
    assert summary["trials"][0]["step"] == 2
    assert io.read_json(f"{model_dir}/{runner.RESULTS_FILE}") == json.loads(json.dumps(summary))
    assert io.read_json(f"{model_dir}/{EVAL_RESULTS_FILE}")["latest"]["step"] == 2
    assert tf.train.latest_checkpoint(model_dir) is not None
    assert io.read_text(f"{model_dir}/vocab.txt") == io.read_text(vocab)
    metadata = io.read_json(f"{model_dir}/{tasks.TASK_FILE}")
    assert metadata["labels"] == ["neg", "pos"] and metadata["vocab_file"] == "vocab.txt"
    lines = io.read_text(f"{model_dir}/test_predictions.tsv").splitlines()
    assert lines[0] == "index\tprediction\tprobability_neg\tprobability_pos"
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "1", "2", "3", "4"]
    assert tf.io.gfile.glob(f"{model_dir}/eval/events.out.tfevents.*")  # TensorBoard

    # An evaluation-only run from the ram:// model_dir scores the same weights the same way.
    again = runner.run(finetune_options(
        task="classification", text_column="text", label_column="label", dev_file=dev,
        vocab_file=vocab, model_dir=model_dir, do_train=False, **small))
    assert again["trials"][0]["results"]["dev"] == pytest.approx(
        summary["trials"][0]["results"]["dev"])


def test_readers_read_ram_files(ram):
    """Each reader, on a ram:// file, gives exactly what was written."""
    records = tasks.read_delimited(_table(f"{ram}/a.tsv", ["text", "label"], [("x \"y", 1)]),
                                   "\t", csv.QUOTE_NONE)
    assert records == [(1, ["text", "label"]), (2, ['x "y', "1"])]

    io.write_text(f"{ram}/train.conll", "-DOCSTART- O\n\nPeter B-PER\nsings O\n\nAnna B-PER\n")
    sentences = conll.read_conll(f"{ram}/train.conll", 0, -1)
    assert [(s.words, s.tags) for s in sentences] == [
        (("Peter", "sings"), ("B-PER", "O")), (("Anna",), ("B-PER",))]

    # GLUE: --data_dir holding the task's directory (RTE/).
    _table(f"{ram}/glue/RTE/dev.tsv", ["index", "sentence1", "sentence2", "label"],
           [(0, "A dog.", "An animal.", "entailment")])
    reader = glue.GlueTsvReader(glue.SPECS["rte"], f"{ram}/glue")
    assert reader.has_split("dev") and not reader.has_split("train")
    [example] = reader.read("dev")
    assert (example.text_a, example.text_b, example.label) == ("A dog.", "An animal.",
                                                               "entailment")

    io.write_json(f"{ram}/dev.json", {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "Paris is big.", "qas": [{"id": "q1", "question": "What is big?",
                                              "answers": [{"text": "Paris",
                                                           "answer_start": 0}]}]}]}]})
    examples, _ = squad_reader.read_squad_json(f"{ram}/dev.json", version=2)
    assert [(e.qas_id, e.question, e.answer_texts, e.answer_starts) for e in examples] == [
        ("q1", "What is big?", ["Paris"], [0])]


def test_missing_ram_file_is_one_user_error(ram, vocab_file):
    missing = f"{ram}/nonexistent/train.tsv"
    with pytest.raises(UserError, match=rf"^{missing}: file not found$"):
        runner.run(finetune_options(
            task="classification", text_column="text", label_column="label",
            train_file=missing, vocab_file=vocab_file, model_dir=f"{ram}/model",
            do_eval=False, max_seq_length=16))
    with pytest.raises(UserError, match=rf"^--data_dir={ram}/nope: directory not found$"):
        glue.GlueTsvReader(glue.SPECS["rte"], f"{ram}/nope")
    with pytest.raises(UserError, match=r"^nosuchfs://b/x.conll: File system scheme 'nosuchfs' "
                                        r"not implemented"):
        conll.read_conll("nosuchfs://b/x.conll", 0, -1)


def test_run_finetuning_names_a_missing_gfile_path_in_one_line(tmp_path, vocab_file):
    """The entry script in a fresh process (ram:// is per-process, so the path does not exist
    there): stderr is exactly one `error:` line, exit status 2, and nothing written locally
    (run in an empty directory)."""
    missing = "ram://nonexistent/train.tsv"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_finetuning.py"), "--task=classification",
         "--text_column=text", "--label_column=label", f"--train_file={missing}",
         f"--vocab_file={vocab_file}", "--model_dir=ram://nonexistent/model", "--nodo_eval"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: {missing}: file not found\n"
    assert os.listdir(tmp_path) == []
