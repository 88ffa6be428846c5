"""run_finetuning.py on bad input: one `error:` line naming the problem, exit status 2, no
traceback."""

import os
import re
import subprocess
import sys

import pytest

from tests.electra_tf.finetune.helpers import VOCAB

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
