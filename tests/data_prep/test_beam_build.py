"""The builder on Apache Beam (FnApiRunner, 2 worker processes) and on non-local filesystems.

Beam's shards must be byte-identical to the local builder's for the same corpus, vocabulary,
flags and seed, its dataset_info.json the same but for the output path, and its bad inputs get
the local builder's messages. The local builder also runs with every path on TensorFlow's
in-memory filesystem (ram://), which no open() can reach.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from data_prep import beam_pipeline, build
from electra_tf import cli, io
from tests.data_prep.corpus_fixtures import corpus_text, documents, write_corpus, write_vocab

REPO = Path(__file__).resolve().parents[2]
TWO_WORKERS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
               "--direct_num_workers=2"]


def _options(corpus: str, vocab: str, output_dir: str, **kwargs) -> build.BuildOptions:
    values = dict(output_dir=output_dir, corpus_files=(corpus,), vocab_file=vocab,
                  max_seq_length=32, num_out_files=5, eval_fraction=0.2, num_processes=1,
                  seed=3)
    values.update(kwargs)
    return build.BuildOptions(**values)


def _outputs(directory: str) -> dict:
    """{relative path: bytes} of the shards and infos (not the work files in .build/)."""
    found = {}
    for sub in ("", build.EVAL_DIR):
        folder = io.join(directory, sub) if sub else directory
        for name in tf.io.gfile.listdir(folder):
            if build.SHARD_PATTERN.fullmatch(name) or name == build.INFO_FILE:
                with tf.io.gfile.GFile(io.join(folder, name), "rb") as f:
                    found[f"{sub}/{name}" if sub else name] = f.read()
    return found


def _without_output_dir(info: bytes) -> dict:
    value = json.loads(info)
    value["flags"].pop("output_dir")
    return value


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("beam_corpus")
    return (str(write_corpus(directory / "corpus.txt", 160, seed=5)),
            str(write_vocab(directory / "vocab.txt")))


@pytest.fixture(scope="module")
def local_build(corpus, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("local") / "out")
    build.build(_options(*corpus, output), log=lambda _: None)
    return output


def test_beam_shards_are_byte_identical_to_the_local_builder(corpus, local_build, tmp_path,
                                                            capfd):
    output = str(tmp_path / "beam")
    info = beam_pipeline.beam_build(_options(*corpus, output), TWO_WORKERS, log=lambda _: None)
    # The worker processes import TensorFlow quietly and log at WARNING, not each channel.
    worker_output = capfd.readouterr().err
    for mark in ("cpu_feature_guard", "oneDNN custom operations", "Creating insecure"):
        assert mark not in worker_output
    local, beam = _outputs(local_build), _outputs(output)
    shards = sorted(k for k in local if k.rpartition("/")[2] != build.INFO_FILE)
    assert len(shards) == 5 and sorted(beam) == sorted(local)
    for name in shards:
        assert beam[name] == local[name], name
    for name in (build.INFO_FILE, f"{build.EVAL_DIR}/{build.INFO_FILE}"):
        assert _without_output_dir(beam[name]) == _without_output_dir(local[name])
    assert info["examples"] > 0


def test_beam_resumes_only_the_missing_shards(corpus, local_build, tmp_path):
    output = str(tmp_path / "beam")
    options = _options(*corpus, output)
    beam_pipeline.beam_build(options, [], log=lambda _: None)
    victim = sorted(k for k in _outputs(output) if build.SHARD_PATTERN.fullmatch(k))[0]
    tf.io.gfile.remove(io.join(output, victim))
    lines = []
    beam_pipeline.beam_build(options, [], log=lines.append)
    assert any("resuming" in line and "4 of 5" in line for line in lines)
    assert _outputs(output)[victim] == _outputs(local_build)[victim]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data_prep.beam_build", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_beam_bad_inputs_get_the_local_messages(corpus, local_build, tmp_path):
    corpus_file, vocab = corpus
    # A non-empty output directory of another build is refused, as locally.
    with pytest.raises(cli.UserError) as local_error:
        build.build(_options(corpus_file, vocab, local_build, seed=4), log=lambda _: None)
    result = _run(f"--corpus_files={corpus_file}", f"--vocab_file={vocab}",
                  f"--output_dir={local_build}", "--seed=4", "--max_seq_length=32",
                  "--num_out_files=5", "--eval_fraction=0.2")
    assert result.returncode == cli.EXIT_USER_ERROR
    assert result.stderr.strip().splitlines()[-1] == f"error: {local_error.value}"
    assert "Traceback" not in result.stderr
    result = _run(f"--corpus_files={tmp_path}/nothing-*.txt", f"--vocab_file={vocab}",
                  f"--output_dir={tmp_path}/out")
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --corpus_files: '{tmp_path}/nothing-*.txt' matches no file")
    result = _run(f"--corpus_files={corpus_file}", f"--vocab_file={vocab}",
                  f"--output_dir={tmp_path}/out2", "--beam_pipeline_options=--runner='x")
    assert result.returncode == cli.EXIT_USER_ERROR
    assert result.stderr.strip().splitlines()[-1].startswith("error: --beam_pipeline_options")
    assert not tf.io.gfile.exists(f"{tmp_path}/out2")


def test_local_builder_on_the_in_memory_filesystem(corpus, local_build):
    """Corpus, vocabulary and output all on ram://: the same bytes as the local build."""
    corpus_file, vocab = corpus
    root = "ram://electra_tf_build_test"
    ram_corpus, ram_vocab = f"{root}/text/corpus.txt", f"{root}/vocab.txt"
    io.copy_file(corpus_file, ram_corpus)
    io.copy_file(vocab, ram_vocab)
    output = f"{root}/out"
    build.build(_options(ram_corpus, ram_vocab, output), log=lambda _: None)
    local, ram = _outputs(local_build), _outputs(output)
    assert sorted(ram) == sorted(local)
    for name in local:
        if name.rpartition("/")[2] != build.INFO_FILE:
            assert ram[name] == local[name], name
    # Resuming there too: a rerun finds every shard and rewrites only the infos.
    lines = []
    build.build(_options(ram_corpus, ram_vocab, output), log=lines.append)
    assert any("5 of 5 shards already complete" in line for line in lines)
    # A glob and a directory of ram:// files resolve like local ones.
    io.write_text(f"{root}/more/b.txt", corpus_text(documents(3, seed=1)))
    io.write_text(f"{root}/more/a.txt", corpus_text(documents(3, seed=2)))
    assert build.sources.resolve_files(f"{root}/more", []) == [
        f"{root}/more/a.txt", f"{root}/more/b.txt"]
    assert build.sources.resolve_files(None, [f"{root}/more/*.txt"]) == [
        f"{root}/more/a.txt", f"{root}/more/b.txt"]
    with pytest.raises(cli.UserError, match="matches no file"):
        build.sources.resolve_files(None, [f"{root}/more/*.csv"])
