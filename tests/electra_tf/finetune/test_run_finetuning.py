"""run_finetuning.py as a command: fine-tuning and evaluation under `mirrored` (two logical CPU
devices, which must be set before TensorFlow starts, hence a subprocess); bad input gives one
`error:` line naming the problem, exit status 2, no traceback."""

import json
import os
import re
import subprocess
import sys

import pytest

from electra_tf.finetune import runner
from tests.electra_tf.finetune.helpers import VOCAB, finetune_options, sentiment_rows, write_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))


def run_finetuning(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(ROOT, "run_finetuning.py"), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def bad_conll(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("EU B-ORG\nrejects O\n\nPeter NNP B-PER\n", encoding="utf-8")
    return ["--task=tagging", f"--train_file={path}"], rf"{path}:4: 3 columns, but the " \
                                                        r"file's first token line has 2"


def unknown_task(tmp_path):
    return ["--task=sentiment"], r"--task='sentiment' is not a task; valid tasks: .*cola"


def other_vocabulary(tmp_path, pretrained_dir, vocab_file):
    path = tmp_path / "train.tsv"
    path.write_text("text\tlabel\ngood\tpos\nbad\tneg\n", encoding="utf-8")
    bigger = tmp_path / "vocab.txt"
    bigger.write_text("\n".join(VOCAB + ["extra"]) + "\n", encoding="utf-8")
    return (["--task=classification", f"--train_file={path}", "--nodo_eval",
             f"--init_checkpoint={pretrained_dir.path}", f"--vocab_file={bigger}"],
            rf"has vocab_size {len(VOCAB)}, but --vocab_file={bigger} has {len(VOCAB) + 1}")


@pytest.mark.parametrize("case", [unknown_task, bad_conll, other_vocabulary])
def test_bad_input_is_one_line(case, tmp_path, vocab_file, request):
    if case is other_vocabulary:
        args, pattern = case(tmp_path, request.getfixturevalue("pretrained_dir"), vocab_file)
    else:
        args, pattern = case(tmp_path)
    result = run_finetuning(f"--vocab_file={vocab_file}", f"--model_dir={tmp_path / 'model'}",
                            *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]


def test_mirrored_fine_tuning_evaluates_each_dev_example_once(tmp_path, vocab_file,
                                                              pretrained_dir):
    train = write_table(tmp_path / "train.tsv", ["text", "label"], sentiment_rows(96, 0))
    # 21 dev examples: neither the eval batch (8) nor the replica count (2) divides it, so the
    # last batch is padded and split unevenly between the replicas.
    dev = write_table(tmp_path / "dev.tsv", ["text", "label"], sentiment_rows(21, 1))
    model_dir = tmp_path / "model"
    result = run_finetuning(
        "--task=classification", f"--train_file={train}", f"--dev_file={dev}",
        f"--vocab_file={vocab_file}", f"--init_checkpoint={pretrained_dir.path}",
        f"--model_dir={model_dir}", "--strategy=mirrored", "--cpu_devices=2",
        "--max_seq_length=16", "--train_batch_size=16", "--eval_batch_size=8",
        "--learning_rate=3e-3", "--num_train_epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(model_dir / runner.RESULTS_FILE) as f:
        mirrored = json.load(f)["trials"][0]["results"]["dev"]
    assert mirrored["accuracy"] * 21 == pytest.approx(round(mirrored["accuracy"] * 21))
    # The same weights evaluated on one device, in this process: the same scores.
    again = runner.run(finetune_options(
        task="classification", dev_file=dev, vocab_file=vocab_file, model_dir=str(model_dir),
        do_train=False, max_seq_length=16, eval_batch_size=8))
    one_device = again["trials"][0]["results"]["dev"]
    assert one_device["accuracy"] == mirrored["accuracy"]
    assert one_device["loss"] == pytest.approx(mirrored["loss"], rel=1e-5)
