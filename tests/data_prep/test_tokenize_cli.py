"""`python -m data_prep.tokenize`: stdin lines -> WordPieces or ids, and its one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.reference.bert_tokenizer import BertTokenizer
from electra_tf.config import SPECIAL_TOKENS

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKENS = list(SPECIAL_TOKENS) + [
    "the", "cafe", "run", "##ning", "##s", "un", "##aff", "##able", ",", ".", "!", "中", "文",
    "σοφος", "x", "##y", "i", "a", "##a"]
# Lines as bytes: CRLF, invalid UTF-8, a blank line, control characters and a long line.
INPUT = (b"The cafe, running!\r\n"
         b"\n"
         b"x\xffy caf\xc3\xa9 \xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3\n"
         b"\x00\x07\xe4\xb8\xad\xe6\x96\x87\xe2\x80\x8bunaffable\x0ci\n"
         + "the\uf8ffcafe \ue000 running\U0010fffd \ufffe\u0378!\n".encode("utf-8")
         + b"a " * 5000 + b"aaaa\n"
         b"no final newline")


def _run(args, stdin=b""):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "data_prep.tokenize", *args], input=stdin,
                          capture_output=True, cwd=REPO_ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "vocab.txt"
    path.write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("ids", [False, True])
def test_one_output_line_per_input_line(vocab_file, ids):
    # Small batches, so that several batches and their boundaries are exercised.
    result = _run([f"--vocab_file={vocab_file}", "--batch_lines=2", "--batch_bytes=4096"]
                  + (["--ids"] if ids else []), INPUT)
    assert result.returncode == 0, result.stderr.decode()
    oracle = BertTokenizer(TOKENS)
    lines = INPUT.split(b"\n")
    expected = [oracle.ids(line.decode("utf-8", "ignore")) if ids else
                oracle.tokenize(line.decode("utf-8", "ignore")) for line in lines]
    expected_text = "".join(" ".join(map(str, row)) + "\n" for row in expected)
    assert result.stdout.decode("utf-8") == expected_text
    if not ids:  # worked out by hand: bad bytes vanish, accents go, sigma is final
        assert result.stdout.decode().split("\n")[2].split() == ["x", "##y", "cafe", "σοφος"]


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: ["--vocab_file=" + str(tmp / "missing.txt")], "vocabulary file not found"),
    (lambda tmp: [], "--vocab_file is required"),
])
def test_errors_are_one_line(tmp_path, make_args, message):
    result = _run(make_args(tmp_path), b"hello\n")
    assert result.returncode == 2
    stderr = result.stderr.decode().strip().splitlines()
    assert stderr[-1].startswith("error: ") and message in stderr[-1]
    assert "Traceback" not in result.stderr.decode() and result.stdout == b""
