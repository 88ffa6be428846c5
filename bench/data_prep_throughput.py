"""End-to-end throughput of the pre-training data builder against the plain-Python reference,
at equal process counts, as a user waits for them.

Each side builds the same corpus (docs/RECIPE.md "Data preparation": tokenize + pack + write
TFRecords) from a cold start:
- the reference: bench/reference/bert_tokenizer.py (the plain-Python BERT tokenizer, line by
  line), bench/reference/example_builder.py (plain-Python packing) and one tf.train.Example per
  example through tf.io.TFRecordWriter, as the reference code does; with P processes the corpus
  is cut beforehand at document boundaries into P files (the reference's own parallelism: one
  job per input file), each process spawned fresh (it imports TensorFlow for the writer);
- this project: `build.build` with --num_processes=P, its tokenizer built from scratch and its
  worker processes spawned within the timing;
- the same build on Apache Beam (`data_prep.beam_build`, the FnApiRunner in multi-processing
  mode with P workers), when apache-beam is installed.
Times are wall-clock from the start of the work to the last file written; the corpus sizes are
copies of the corpus joined by blank lines (`--copies`). On a shared machine look at the load
average printed with the results: compare ratios measured in one run only.

Usage: python bench/data_prep_throughput.py [--corpus=FILE --vocab=FILE] [--copies=1,9,21]
       [--processes=2]
The default corpus is the demo Wikipedia corpus (`python -m data_prep.fetch_demo_data`).
"""

import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # noqa: E402  # isort: skip

from absl import flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("corpus", None, "Text corpus (one sentence per line, blank line between "
                    "documents). Default: the demo Wikipedia corpus.")
flags.DEFINE_string("vocab", None, "WordPiece vocabulary for --corpus.")
flags.DEFINE_list("copies", ["1", "9", "21"], "Corpus sizes to build, in copies of --corpus "
                  "(the demo corpus is 4.9 MB: 9 copies are 43 MB, 21 copies 103 MB).")
flags.DEFINE_integer("processes", 2, "Processes (and Beam workers) on each side.")
flags.DEFINE_integer("max_seq_length", 128, "Example length.")
flags.DEFINE_bool("reference", True, "Time the plain-Python reference (the slow side).")
flags.DEFINE_bool("beam", True, "Also time the Beam pipeline (needs apache-beam).")

DEMO_CORPUS = REPO / ".cache" / "demo_data" / "wiki" / "summaries_en-us.txt"
DEMO_VOCAB = REPO / ".cache" / "demo_data" / "vocab" / "vocab.txt"


def corpus_and_vocab() -> tuple:
    if FLAGS.corpus:
        if not FLAGS.vocab:
            raise cli.UserError("--corpus needs --vocab")
        return Path(FLAGS.corpus), Path(FLAGS.vocab)
    if DEMO_CORPUS.exists() and DEMO_VOCAB.exists():
        return DEMO_CORPUS, DEMO_VOCAB
    raise cli.UserError(f"{DEMO_CORPUS} not found: run python -m data_prep.fetch_demo_data "
                        "first, or pass --corpus and --vocab")


def repeated(corpus: Path, copies: int, workdir: Path) -> Path:
    path = workdir / f"copies{copies}.txt"
    text = corpus.read_bytes()
    path.write_bytes(b"\n\n".join([text.rstrip(b"\n")] * copies) + b"\n")
    return path


def split_at_documents(corpus: Path, parts: int, workdir: Path) -> list:
    """The corpus cut into `parts` files of about equal size at blank lines (documents whole),
    as a reference user would prepare one input file per job."""
    documents = corpus.read_bytes().rstrip(b"\n").split(b"\n\n")
    target = sum(len(d) for d in documents) / parts
    paths, chunk, size = [], [], 0
    for document in documents:
        chunk.append(document)
        size += len(document)
        if size >= target * (len(paths) + 1) and len(paths) < parts - 1:
            paths.append(_write_part(workdir, len(paths), chunk))
            chunk = []
    paths.append(_write_part(workdir, len(paths), chunk))
    return paths


def _write_part(workdir: Path, index: int, documents: list) -> Path:
    path = workdir / f"part{index}.txt"
    path.write_bytes(b"\n\n".join(documents) + b"\n")
    return path


def _reference_job(corpus: str, vocab: str, output: str, max_seq_length: int, seed: int,
                   counts) -> None:
    """One reference job (a fresh process): tokenize, pack and write one input file."""
    from bench.reference.bert_tokenizer import BertTokenizer
    from bench.reference.example_builder import ReferenceExampleBuilder, file_lines, write_tfrecord
    from data_prep import build

    tokenizer = BertTokenizer.from_file(vocab)
    wordpieces = [0]

    def tokenize(line):
        ids = tokenizer.ids(line)
        wordpieces[0] += len(ids)
        return ids

    builder = ReferenceExampleBuilder(tokenize, max_seq_length, tokenizer.index["[CLS]"],
                                      tokenizer.index["[SEP]"], build.shard_rng(0, seed))

    def examples():
        for line in file_lines(corpus):
            example = builder.add_line(line)
            if example:
                yield example
        example = builder.add_line("")
        if example:
            yield example

    write_tfrecord(output, examples())
    counts.put(wordpieces[0])


def run_reference(parts: list, vocab: Path, output: Path) -> int:
    """The reference on len(parts) processes at once; returns the wordpieces tokenized."""
    context = multiprocessing.get_context("spawn")
    counts = context.Queue()
    jobs = [context.Process(target=_reference_job, args=(
        str(part), str(vocab), str(output / f"reference-{i}.tfrecord"), FLAGS.max_seq_length, i,
        counts)) for i, part in enumerate(parts)]
    for job in jobs:
        job.start()
    total = sum(counts.get() for _ in jobs)
    for job in jobs:
        job.join()
    return total


def build_options(corpus: Path, vocab: Path, output: Path):
    from data_prep import build

    return build.BuildOptions(output_dir=str(output), corpus_files=(str(corpus),),
                              vocab_file=str(vocab), max_seq_length=FLAGS.max_seq_length,
                              num_processes=FLAGS.processes)


def run_project(corpus: Path, vocab: Path, output: Path) -> int:
    from data_prep import build

    build._cached_tokenizer.cache_clear()  # a cold start, like a fresh command
    info = build.build(build_options(corpus, vocab, output), log=lambda _: None)
    return info["corpus_wordpieces"]


def run_beam(corpus: Path, vocab: Path, output: Path) -> int:
    from data_prep import beam_pipeline, build

    build._cached_tokenizer.cache_clear()
    args = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
            f"--direct_num_workers={FLAGS.processes}"]
    info = beam_pipeline.beam_build(build_options(corpus, vocab, output), args, log=lambda _: None)
    return info["corpus_wordpieces"]


def timed(function, *args) -> tuple:
    began = time.monotonic()
    wordpieces = function(*args)
    return wordpieces, time.monotonic() - began


def main(argv):
    del argv
    corpus, vocab = corpus_and_vocab()
    sides = [("project", run_project)]
    if FLAGS.beam:
        try:
            import apache_beam  # noqa: F401
            sides.append(("beam", run_beam))
        except ImportError:
            print("apache-beam is not installed (pip install -e '.[beam]'): no Beam column")
    print(f"corpus: {corpus} ({corpus.stat().st_size / 1e6:.1f} MB per copy), vocab {vocab}, "
          f"max_seq_length {FLAGS.max_seq_length}, {FLAGS.processes} processes a side, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| corpus | wordpieces | reference | project | project vs reference | Beam "
          "| project wordpieces/s |\n|---|---|---|---|---|---|---|")
    workdir = Path(tempfile.mkdtemp(prefix="electra_bench_"))
    try:
        for copies in map(int, FLAGS.copies):
            text = repeated(corpus, copies, workdir)
            row = {}
            for name, function in sides:
                wordpieces, seconds = timed(function, text, vocab, workdir / name)
                row[name] = seconds
                shutil.rmtree(workdir / name)
            if FLAGS.reference:
                parts = split_at_documents(text, FLAGS.processes, workdir)
                (workdir / "reference").mkdir()
                reference_wordpieces, row["reference"] = timed(run_reference, parts, vocab,
                                                               workdir / "reference")
                shutil.rmtree(workdir / "reference")
                if reference_wordpieces != wordpieces:
                    print(f"WARNING: the reference tokenized {reference_wordpieces:,} "
                          f"wordpieces, the project {wordpieces:,}")
            reference = row.get("reference")
            print(f"| {text.stat().st_size / 1e6:,.0f} MB | {wordpieces:,} | "
                  + (f"{reference:.1f} s" if reference else "-") + f" | {row['project']:.1f} s"
                  + (f" | {reference / row['project']:.1f}x" if reference else " | -")
                  + (f" | {row['beam']:.1f} s" if "beam" in row else " | -")
                  + f" | {wordpieces / row['project']:,.0f} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    cli.run(main)
