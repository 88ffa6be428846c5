"""The builder end to end: real TFRecords, real tokenizer, real processes.

Schema and statistics, equality with the plain-Python reference pipeline, determinism across
process counts, kill-and-resume, every bad input of issue 2 as a real command, non-UTF-8 text, a
50 MB line, a TFDS source (tfds.testing.mock_data) and --learn_vocab_size.
"""

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from bench.reference.bert_tokenizer import BertTokenizer
from bench.reference.example_builder import (
    ReferenceExampleBuilder,
    reference_examples,
    to_tf_example,
)
from data_prep import build
from tests.data_prep.corpus_fixtures import (
    SPECIALS,
    corpus_text,
    documents,
    write_corpus,
    write_vocab,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "build_pretraining_dataset.py")
FEATURES = ("input_ids", "input_mask", "segment_ids")
# Lines TensorFlow's C++ logging prints on import whatever TF_CPP_MIN_LOG_LEVEL says.
TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                      r"[IWE]\d{4} \d\d:\d\d:\d\d)")


def command(*args: str) -> list:
    return [sys.executable, SCRIPT, *args]


def quiet_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.strip() and not TF_NOISE.match(line)]


def shard_files(directory: Path) -> list:
    return sorted(p for p in Path(directory).iterdir()
                  if build.SHARD_PATTERN.fullmatch(p.name))


def parse_shards(paths, max_seq_length: int) -> dict:
    spec = {k: tf.io.FixedLenFeature([max_seq_length], tf.int64) for k in FEATURES}
    rows = {k: [] for k in FEATURES}
    for record in tf.data.TFRecordDataset([str(p) for p in paths]):
        parsed = tf.io.parse_single_example(record, spec)
        for k in FEATURES:
            rows[k].append(parsed[k].numpy())
    return {k: np.array(v).reshape(-1, max_seq_length) for k, v in rows.items()}


def snapshot(directory: Path):
    if not directory.exists():
        return None
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else "dir"
            for p in sorted(directory.rglob("*"))}


def options(corpus, vocab, output_dir, **kwargs) -> build.BuildOptions:
    return build.BuildOptions(output_dir=str(output_dir), corpus_files=(str(corpus),),
                              vocab_file=str(vocab), **kwargs)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    return {
        "root": root,
        "vocab": write_vocab(root / "vocab.txt"),
        "small": write_corpus(root / "small.txt", 300, seed=1),
        "big": write_corpus(root / "big.txt", 5000, seed=2),
    }


def test_schema_statistics_and_eval_split(data):
    out = data["root"] / "schema"
    info = build.build(options(data["small"], data["vocab"], out, max_seq_length=64,
                               num_out_files=5, eval_fraction=0.2))
    train_files, eval_files = shard_files(out), shard_files(out / "eval")
    assert [p.name for p in train_files] == [f"pretrain_data.tfrecord-{i:05d}-of-00004"
                                             for i in range(4)]
    assert [p.name for p in eval_files] == ["pretrain_data.tfrecord-00000-of-00001"]
    eval_info = json.loads((out / "eval" / "dataset_info.json").read_text())
    assert info == json.loads((out / "dataset_info.json").read_text())

    vocab = data["vocab"].read_text().split("\n")
    for split_info, files in ((info, train_files), (eval_info, eval_files)):
        rows = parse_shards(files, 64)
        ids, mask, segments = rows["input_ids"], rows["input_mask"], rows["segment_ids"]
        lengths = mask.sum(axis=1)
        assert split_info["examples"] == len(ids) > 0
        assert split_info["tokens"] == int(lengths.sum())
        assert (ids[:, 0] == vocab.index("[CLS]")).all()
        assert ((ids == 0) == (mask == 0)).all()  # padding is exactly the zero ids
        single = (segments.sum(axis=1) == 0)
        assert split_info["single_segment_fraction"] == pytest.approx(single.mean())
        assert split_info["full_length_fraction"] == pytest.approx((lengths == 64).mean())
        assert sum(split_info["length_histogram"].values()) == len(ids)
        sep = vocab.index("[SEP]")
        assert (ids[np.arange(len(ids)), lengths - 1] == sep).all()
        assert split_info["vocab_size"] == len(vocab) - 1  # trailing newline
        vocab_bytes = Path(data["vocab"]).read_bytes()
        assert split_info["vocab_sha256"] == hashlib.sha256(vocab_bytes).hexdigest()
        assert split_info["max_seq_length"] == 64
    # the two splits hold all the documents, none twice
    assert info["documents"] + eval_info["documents"] == 300
    assert info["eval"]["examples"] == eval_info["examples"]
    assert 0 < info["unk_rate"] < 0.05  # "Straße": the vocabulary has no "ß"


def test_same_bytes_as_the_plain_python_reference_pipeline(data):
    for blanks, max_len in ((True, 128), (False, 32)):
        out = data["root"] / f"reference_{blanks}"
        build.build(options(data["small"], data["vocab"], out, max_seq_length=max_len,
                            num_out_files=1, blanks_separate_docs=blanks, seed=7))
        tokenizer = BertTokenizer.from_file(str(data["vocab"]))
        ids = tokenizer.index
        builder = ReferenceExampleBuilder(tokenizer.ids, max_len, ids["[CLS]"], ids["[SEP]"],
                                          build.shard_rng(7, 0))
        expected = [to_tf_example(e) for e in
                    reference_examples(builder, [str(data["small"])], blanks)]
        ours = [r.numpy() for r in tf.data.TFRecordDataset([str(p) for p in shard_files(out)])]
        assert len(ours) == len(expected) > 50
        assert ours == expected


@pytest.fixture(scope="module")
def uninterrupted(data):
    out = data["root"] / "p1"
    build.build(options(data["big"], data["vocab"], out, num_out_files=16, num_processes=1))
    return {p.name: p.read_bytes() for p in shard_files(out)}


def test_byte_identical_across_process_counts(data, uninterrupted, monkeypatch):
    out = data["root"] / "p2"
    # The main process works too, and would build every shard of this small corpus before the
    # worker has imported TensorFlow: hold it back until the worker process has built a shard.
    make_tokenizer = build.make_tokenizer

    def after_a_worker_shard(*args):
        deadline = time.monotonic() + 300
        while not (out.is_dir() and shard_files(out)):
            assert time.monotonic() < deadline, "the worker process built nothing"
            time.sleep(0.02)
        return make_tokenizer(*args)

    monkeypatch.setattr(build, "make_tokenizer", after_a_worker_shard)
    build.build(options(data["big"], data["vocab"], out, num_out_files=16, num_processes=2))
    assert {p.name: p.read_bytes() for p in shard_files(out)} == uninterrupted
    assert len(uninterrupted) == 16


def test_killed_run_resumes_to_the_same_bytes(data, uninterrupted):
    out = data["root"] / "killed"
    args = [f"--corpus_files={data['big']}", f"--vocab_file={data['vocab']}",
            f"--output_dir={out}", "--num_out_files=16", "--num_processes=1"]
    process = subprocess.Popen(command(*args), env=quiet_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and shard_files(out)):
        assert process.poll() is None, "the build ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    complete = {p.name: p.read_bytes() for p in shard_files(out)}
    assert 1 <= len(complete) < 16
    # whatever has a final name is complete
    assert all(uninterrupted[name] == content for name, content in complete.items())

    rerun = subprocess.run(command(*args), env=quiet_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(complete)} of 16 shards already complete" in rerun.stdout
    assert {p.name: p.read_bytes() for p in shard_files(out)} == uninterrupted
    assert not list((out / ".build").glob("*.partial"))


@pytest.fixture(scope="module")
def bad_runs(data, tmp_path_factory):
    """Every bad input of issue 2, run as real commands side by side (they are independent)."""
    root = tmp_path_factory.mktemp("bad")
    (root / "empty_dir").mkdir()
    vocab_lines = data["vocab"].read_text().splitlines()
    no_pad = root / "no_pad.txt"
    no_pad.write_text("\n".join(vocab_lines[1:] + ["[PAD]"]) + "\n")
    no_mask = root / "no_mask.txt"
    no_mask.write_text("\n".join(t for t in vocab_lines if t != "[MASK]") + "\n")
    busy = root / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("precious")
    (busy / "pretrain_data.tfrecord-00000-of-00001").write_text("not ours to touch")
    good = [f"--corpus_files={data['small']}", f"--vocab_file={data['vocab']}"]
    cases = {
        "missing corpus dir": ([f"--corpus_dir={root / 'nope'}", good[1]],
                               "--corpus_dir"),
        "empty corpus dir": ([f"--corpus_dir={root / 'empty_dir'}", good[1]], "no files"),
        "glob matches nothing": ([f"--corpus_files={root / '*.none'}", good[1]],
                                 "matches no file"),
        "missing vocab": ([good[0], f"--vocab_file={root / 'nope.txt'}"], "--vocab_file"),
        "no [PAD] at id 0": ([good[0], f"--vocab_file={no_pad}"], "[PAD]"),
        "no [MASK]": ([good[0], f"--vocab_file={no_mask}"], "[MASK]"),
        "max_seq_length under 5": ([*good, "--max_seq_length=4"], "--max_seq_length"),
        "learn and vocab": ([*good, "--learn_vocab_size=100"], "--learn_vocab_size"),
        "non-empty output": ([*good, f"--output_dir={busy}"], "--overwrite"),
    }
    runs = {}
    for name, (args, _) in cases.items():
        out = busy if name == "non-empty output" else root / f"out_{len(runs)}"
        if not any(a.startswith("--output_dir") for a in args):
            args = [*args, f"--output_dir={out}"]
        before = snapshot(out)
        runs[name] = (subprocess.Popen(command(*args), env=quiet_env(), text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                      out, before)
    results = {}
    for name, (process, out, before) in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stderr, snapshot(out) == before, cases[name][1])
    return results


@pytest.mark.parametrize("case", [
    "missing corpus dir", "empty corpus dir", "glob matches nothing", "missing vocab",
    "no [PAD] at id 0", "no [MASK]", "max_seq_length under 5", "learn and vocab",
    "non-empty output"])
def test_bad_input_is_one_line_and_touches_nothing(bad_runs, case):
    returncode, stderr, untouched, fragment = bad_runs[case]
    assert returncode != 0
    assert "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert fragment in lines[0]
    assert untouched


def test_overwrite_replaces_only_our_files(data):
    out = data["root"] / "overwrite"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "pretrain_data.tfrecord-00007-of-00009").write_text("stale shard of ours")
    build.build(options(data["small"], data["vocab"], out, num_out_files=2, overwrite=True))
    assert (out / "notes.txt").read_text() == "keep me"
    assert [p.name for p in shard_files(out)] == ["pretrain_data.tfrecord-00000-of-00002",
                                                  "pretrain_data.tfrecord-00001-of-00002"]


def test_non_utf8_bytes_are_replaced_counted_and_built(data, tmp_path):
    corpus = tmp_path / "mixed.txt"
    corpus.write_bytes(corpus_text(documents(20, seed=5)).encode() +
                       b"\nLatin-1 caf\xe9 and \xff\xfe bytes.\n")
    info = build.build(options(corpus, data["vocab"], tmp_path / "out", num_out_files=1))
    assert info["undecodable_bytes"] == 3
    assert info["examples"] > 0


def test_a_50_mb_line_builds_in_bounded_memory(data, tmp_path):
    corpus = tmp_path / "one_line.txt"
    line = b"the cat sat on a mat " * 2_500_000  # 52.5 MB, no newline anywhere
    corpus.write_bytes(line)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    info = build.build(options(corpus, data["vocab"], tmp_path / "out", num_out_files=1))
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    # one example per 1 MiB piece (each far longer than an example), all full length
    assert info["examples"] == info["sentences"] >= len(line) // (1 << 20)
    assert info["full_length_fraction"] == 1.0
    assert growth < 300 << 20


def test_tfds_source_gives_the_same_shards_as_the_same_text_in_a_file(data, tmp_path):
    import tensorflow_datasets as tfds

    texts = ["\n".join(doc) for doc in documents(60, seed=6)]

    def as_dataset(self, split, **kwargs):
        match = re.fullmatch(r"(\w+)(?:\[(\d*):(\d*)\])?", str(split))
        start, stop = int(match.group(2) or 0), int(match.group(3) or len(texts))
        return tf.data.Dataset.from_tensor_slices({"text": texts[start:stop]})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        info = build.build(build.BuildOptions(
            output_dir=str(tmp_path / "tfds"), tfds_name="lm1b", tfds_split="train",
            tfds_text_key="text", vocab_file=str(data["vocab"]), num_out_files=1))
    assert info["documents"] == 60
    corpus = tmp_path / "same.txt"
    corpus.write_text("\n\n".join(texts) + "\n")
    build.build(options(corpus, data["vocab"], tmp_path / "files", num_out_files=1))
    assert ((tmp_path / "tfds" / "pretrain_data.tfrecord-00000-of-00001").read_bytes() ==
            (tmp_path / "files" / "pretrain_data.tfrecord-00000-of-00001").read_bytes())


def test_learned_vocabulary_is_written_next_to_the_shards(data):
    out = data["root"] / "learned"
    info = build.build(build.BuildOptions(output_dir=str(out), corpus_files=(
        str(data["small"]),), learn_vocab_size=300, num_out_files=1))
    vocab = (out / "vocab.txt").read_text().splitlines()
    assert vocab[:5] == SPECIALS and len(vocab) <= 300 and len(set(vocab)) == len(vocab)
    assert any(t.startswith("##") for t in vocab)
    assert info["vocab_file"] == str(out / "vocab.txt")
    assert info["vocab_sha256"] == hashlib.sha256((out / "vocab.txt").read_bytes()).hexdigest()
    assert info["vocab_size"] == len(vocab)
    # the learner saw the tokenizer's normalization: lower-cased, accent-free pieces
    assert not any(t != t.lower() for t in vocab[5:]) and "é" not in "".join(vocab)
    assert info["unk_rate"] < 0.01
