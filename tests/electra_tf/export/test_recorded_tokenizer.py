"""Export of a fine-tuned model_dir serves the tokenizer the fine-tuning recorded in
finetune_task.json (vocab_file, do_lower_case, strip_accents, the vocabulary's sha256)."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_io
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from electra_tf.export import saved_model
from electra_tf.finetune import runner
from electra_tf.finetune.model import SequenceModel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "chef", "Chef", "café", "cafe",
         "Café", "good", "!"]
CONFIG = ModelConfig(vocab_size=len(VOCAB), embedding_size=16, hidden_size=32,
                     num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=16, generator_hidden_size=0.5)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def cased_dir(tmp_path):
    """A fine-tuned cased classifier: do_lower_case and strip_accents false, vocab recorded."""
    directory = tmp_path / "cased"
    directory.mkdir()
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    model = SequenceModel(CONFIG, num_labels=2)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory), 1).save(0)
    CONFIG.save(str(directory / "config.json"))
    (directory / "finetune_task.json").write_text(json.dumps({
        "task": "classification", "kind": "classification", "labels": ["a", "b"],
        "vocab_file": "vocab.txt", "vocab_sha256": _sha(vocab), "do_lower_case": False,
        "strip_accents": False, "max_seq_length": 16, "text_pairs": False}))
    return directory


def _ids(module, text):
    packed = module.pack(tf.constant([text]), tf.constant([], tf.string))
    return [VOCAB[i] for i in packed["input_ids"].numpy()[0]]


def test_unset_flags_take_the_recorded_tokenizer(cased_dir):
    opened = checkpoint_io.open_checkpoint(str(cased_dir))
    module = saved_model.build_serving_module(opened)
    assert module.tokenizer.vocab_file == str(cased_dir / "vocab.txt")
    assert not module.tokenizer.do_lower_case and not module.tokenizer.strip_accents
    # Cased and accented pieces survive: lower-casing would give "chef" and "cafe".
    assert _ids(module, "Chef Café !") == ["[CLS]", "Chef", "Café", "!", "[SEP]"]
    # Flags that agree with the record are fine.
    saved_model.build_serving_module(opened, do_lower_case=False, strip_accents=False)


def test_contradicting_flags_are_errors(cased_dir):
    opened = checkpoint_io.open_checkpoint(str(cased_dir))
    with pytest.raises(UserError, match=r"--do_lower_case=True contradicts do_lower_case=False"):
        saved_model.build_serving_module(opened, do_lower_case=True)
    with pytest.raises(UserError, match=r"--strip_accents=True contradicts"):
        saved_model.build_serving_module(opened, strip_accents=True)


def test_vocab_sha256_is_checked(cased_dir, tmp_path):
    opened = checkpoint_io.open_checkpoint(str(cased_dir))
    # Another vocabulary of the same size, given on purpose, is served (with a warning) ...
    other = tmp_path / "other.txt"
    other.write_text("\n".join(VOCAB[:5] + VOCAB[5:][::-1]) + "\n", encoding="utf-8")
    module = saved_model.build_serving_module(opened, vocab_file=str(other))
    assert module.tokenizer.vocab_file == str(other)
    # ... one of another size is not.
    bigger = tmp_path / "bigger.txt"
    bigger.write_text("\n".join(VOCAB + ["extra"]) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="embedding table"):
        saved_model.build_serving_module(opened, vocab_file=str(bigger))
    # The recorded copy changed since fine-tuning: an error, not a silent re-mapping of ids.
    (cased_dir / "vocab.txt").write_text("\n".join(VOCAB[:5] + VOCAB[5:][::-1]) + "\n",
                                         encoding="utf-8")
    with pytest.raises(UserError, match="sha256 differs"):
        saved_model.build_serving_module(opened)


def test_cli_contradiction_is_one_line(cased_dir, tmp_path):
    run = subprocess.run(
        [sys.executable, "export_saved_model.py", f"--checkpoint={cased_dir}",
         f"--export_dir={tmp_path / 'serving'}", "--do_lower_case"], cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --do_lower_case=True contradicts do_lower_case=False")


def test_fine_tuning_records_the_vocab_sha256(tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")

    class Task:
        def metadata(self):
            return {"task": "t", "kind": "classification", "labels": ["a", "b"]}

    class Tok:
        vocab_file, do_lower_case, strip_accents = str(vocab), False, False

    class Options:
        max_seq_length = 16

    runner.save_task_files(str(tmp_path / "run"), Task(), Tok(), Options(), pairs=True)
    record = json.loads((tmp_path / "run" / "finetune_task.json").read_text())
    assert record["vocab_sha256"] == hashlib.sha256(vocab.read_bytes()).hexdigest()
    assert (record["vocab_file"], record["do_lower_case"], record["strip_accents"],
            record["text_pairs"]) == ("vocab.txt", False, False, True)
    assert np.array_equal(np.frombuffer((tmp_path / "run" / "vocab.txt").read_bytes(), np.uint8),
                          np.frombuffer(vocab.read_bytes(), np.uint8))
