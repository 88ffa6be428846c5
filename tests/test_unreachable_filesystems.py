"""A path on a filesystem that refuses to answer (no credentials, a bucket that does not exist, no
network, a scheme whose plugin is not installed) is one `error:` line naming the flag and the path,
at the first touch, before any work (issue 16).

The refusing filesystem here is s3:// without its plugin (TensorFlow 2.21 ships none): every call
raises tf.errors.UnimplementedError, offline and at once, as a GCS call without credentials raises
its own OpError. The expected messages follow the project's rule for bad input (flag=path: reason).
"""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from data_prep import build, sources
from electra_tf import data
from electra_tf.cli import UserError
from electra_tf.finetune import glue
from electra_tf.pretraining import app
from electra_tf.pretraining.options import PretrainOptions
from tests.data_prep.corpus_fixtures import write_corpus, write_vocab
from tests.electra_tf.pretraining.test_app import TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFUSING = "s3://electra-tf-no-such-bucket"
REFUSAL = "File system scheme 's3' not implemented"  # the filesystem's own words, passed on


def test_the_refusing_filesystem_refuses():
    with pytest.raises(tf.errors.OpError):
        tf.io.gfile.exists(f"{REFUSING}/x")


def test_builder_corpus_output_and_vocab(tmp_path):
    corpus = str(write_corpus(tmp_path / "corpus.txt", n_docs=5))
    vocab = str(write_vocab(tmp_path / "vocab.txt"))
    with pytest.raises(UserError, match=rf"^--corpus_files={REFUSING}/\*\.txt: {REFUSAL}"):
        sources.resolve_files(None, [f"{REFUSING}/*.txt"])
    # (tf.io.gfile.isdir answers False there: "no such directory" would hide the reason)
    with pytest.raises(UserError, match=rf"^--corpus_dir={REFUSING}/text: {REFUSAL}"):
        sources.resolve_files(f"{REFUSING}/text", [])
    for flag, path, paths in (
            ("--output_dir", f"{REFUSING}/out", dict(vocab_file=vocab)),
            ("--vocab_file", f"{REFUSING}/vocab.txt", dict(output_dir=str(tmp_path / "out")))):
        paths[flag[2:]] = path
        with pytest.raises(UserError, match=rf"^{flag}={path}: {REFUSAL}"):
            build.build(build.BuildOptions(corpus_files=(corpus,), **paths), log=lambda _: None)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_pretraining_paths(tmp_path):
    with pytest.raises(UserError, match=rf"^--train_files={REFUSING}/\*: {REFUSAL}"):
        data.expand_file_patterns(f"{REFUSING}/*", "--train_files")
    for flag, value in (("model_dir", f"{REFUSING}/model"),
                        ("init_checkpoint", f"{REFUSING}/model/ckpt-1")):
        paths = {"model_dir": str(tmp_path / "model"), flag: value}
        options = PretrainOptions(train_files=str(tmp_path / "none-*"),
                                  vocab_file=str(tmp_path / "vocab.txt"), **{**TINY, **paths})
        with pytest.raises(UserError, match=rf"^--{flag}={value}: {REFUSAL}"):
            app.open_inputs(options)


def test_glue_data_dir():
    with pytest.raises(UserError, match=rf"^--data_dir={REFUSING}/glue: {REFUSAL}"):
        glue.GlueTsvReader(glue.SPECS["rte"], f"{REFUSING}/glue")


def test_entry_script_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "run_pretraining.py", "--flagfile=configs/demo.flags",
         f"--train_files={tmp_path}/none-*", f"--vocab_file={tmp_path}/vocab.txt",
         f"--model_dir={REFUSING}/model"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: --model_dir={REFUSING}/model: {REFUSAL}"), result.stderr[-2000:]
