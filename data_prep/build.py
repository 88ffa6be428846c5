"""The pre-training data builder: corpus -> WordPiece -> packed examples -> TFRecord shards.

Implements docs/RECIPE.md "Data preparation" (build_pretraining_dataset) end to end, with what the
reference lacks:

- Deterministic. The corpus is cut into shards by position (see data_prep/sources.py), never by
  worker, and each shard packs with its own random.Random seeded from (--seed, shard index), so
  the same corpus, vocabulary, flags and seed give byte-identical shards whatever
  --num_processes is.
- Parallel. Worker processes (multiprocessing, spawn) each build whole shards, and so does the
  main process. --num_processes=0 (the default) uses one process per 32 MiB of corpus, at most
  one per CPU and 8: each extra process spends seconds importing TensorFlow.
- Atomic and resumable. A shard is written under output_dir/.build/ and renamed to its final
  name only when complete. output_dir/.build/manifest.json records what is being built; running
  the same command again skips the shards whose final file exists and builds the rest, giving
  the same bytes as an uninterrupted run.
- Safe. A non-empty output directory that does not hold this same build is refused unless
  --overwrite; --overwrite replaces only this builder's own files (shards named
  pretrain_data.tfrecord-*-of-*, dataset_info.json, a learned vocab.txt, .build/) and never
  deletes anything else.
- Held-out data. --eval_fraction=F puts the last F of the corpus (by bytes, or by examples for
  TFDS; documents are never split) into separate shards under output_dir/eval/.
- Number of shards (--num_out_files=0, the default): about one per 64 MiB of corpus, but at
  least min(16, size / 256 KiB) so that small corpora still parallelize, and at most 1000; never
  the reference's fixed 1000 tiny files.

Output: output_dir/pretrain_data.tfrecord-XXXXX-of-YYYYY with int64 features input_ids,
input_mask, segment_ids of length max_seq_length, and output_dir/dataset_info.json (and the same
under output_dir/eval/ for the held-out shards).
"""

# First, also in worker processes (spawned or Beam's), which import this module before anything
# else of ours: TensorFlow imported with its C++ start-up notices filtered (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import queue
import random
import re
import threading
import time
import traceback
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from data_prep import sources
from data_prep.example_builder import ExampleBuilder
from electra_tf import io
from electra_tf.config import SPECIAL_TOKENS

SHARD_PREFIX = "pretrain_data.tfrecord"
SHARD_PATTERN = re.compile(r"pretrain_data\.tfrecord-\d{5}-of-\d{5}")
INFO_FILE = "dataset_info.json"
MANIFEST_FILE = "manifest.json"
LEARNED_VOCAB_FILE = "vocab.txt"
STATE_DIR = ".build"
EVAL_DIR = "eval"
MIN_SEQ_LENGTH = 5
MAX_OUT_FILES = 1000
BYTES_PER_SHARD = 64 << 20
MIN_BYTES_PER_SHARD = 256 << 10
MIN_DEFAULT_SHARDS = 16
BLOCK_CHARS = 1 << 18  # text tokenized per call: large enough to amortize the call overhead
HISTOGRAM_BINS = 16
BYTES_PER_PROCESS = 32 << 20
MAX_AUTO_PROCESSES = 8
MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Everything a build depends on; the entry script fills it from its flags."""

    output_dir: str
    corpus_dir: str | None = None
    corpus_files: tuple = ()
    tfds_name: str | None = None
    tfds_split: str = "train"
    tfds_text_key: str = "text"
    vocab_file: str | None = None
    learn_vocab_size: int = 0
    max_seq_length: int = 128
    num_processes: int = 0  # 0: chosen from the corpus size and the CPUs
    num_out_files: int = 0
    eval_fraction: float = 0.0
    do_lower_case: bool = True
    strip_accents: bool = True
    blanks_separate_docs: bool = True
    seed: int = 0
    overwrite: bool = False


@dataclasses.dataclass(frozen=True)
class ShardTask:
    index: int  # global: train shards first, then eval shards; seeds the packing RNG
    split: str  # "train" or "eval"
    number: int  # position within its split
    count: int  # shards in its split
    range: sources.Range

    @property
    def name(self) -> str:
        return f"{SHARD_PREFIX}-{self.number:05d}-of-{self.count:05d}"

    @property
    def relative_path(self) -> str:
        return f"{EVAL_DIR}/{self.name}" if self.split == "eval" else self.name

    def final_path(self, output_dir: str) -> str:
        return io.join(output_dir, self.relative_path)

    def state_path(self, output_dir: str, suffix: str) -> str:
        return io.join(output_dir, STATE_DIR, f"{self.split}-{self.name}{suffix}")


def default_num_out_files(size_bytes: int) -> int:
    return max(1, min(MAX_OUT_FILES, max(math.ceil(size_bytes / BYTES_PER_SHARD),
                                         min(MIN_DEFAULT_SHARDS,
                                             math.ceil(size_bytes / MIN_BYTES_PER_SHARD)))))


def default_num_processes(corpus, pending: list) -> int:
    """One process per BYTES_PER_PROCESS of work, at most one per CPU (and MAX_AUTO_PROCESSES):
    a worker process spends seconds importing TensorFlow, which a small corpus cannot repay."""
    if isinstance(corpus, sources.TfdsCorpus):
        work = sum(t.range.stop - t.range.start for t in pending) * (
            corpus.estimated_bytes / corpus.total_size)
    else:
        work = sum(t.range.stop - t.range.start for t in pending)
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_PROCESSES,
                      math.ceil(work / BYTES_PER_PROCESS)))


def shard_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"electra-tf shard {seed} {index}")


def validate(options: BuildOptions) -> None:
    sources_given = [bool(options.corpus_dir), bool(options.corpus_files),
                     bool(options.tfds_name)]
    if sum(sources_given) != 1:
        raise cli.UserError("give exactly one corpus: --corpus_dir, --corpus_files or "
                            "--tfds_name")
    if options.vocab_file and options.learn_vocab_size:
        raise cli.UserError("--learn_vocab_size and --vocab_file exclude each other: learn a "
                            "vocabulary or use one")
    if not options.vocab_file and not options.learn_vocab_size:
        raise cli.UserError("give --vocab_file (e.g. the BERT-uncased vocab.txt) or "
                            "--learn_vocab_size=N")
    if options.learn_vocab_size and options.learn_vocab_size <= len(SPECIAL_TOKENS):
        raise cli.UserError(f"--learn_vocab_size={options.learn_vocab_size} is too small")
    if options.max_seq_length < MIN_SEQ_LENGTH:
        raise cli.UserError(f"--max_seq_length={options.max_seq_length} is under "
                            f"{MIN_SEQ_LENGTH} ([CLS] A [SEP] B [SEP] needs room)")
    if options.num_processes < 0:
        raise cli.UserError(f"--num_processes={options.num_processes} must be at least 1 "
                            "(or 0: chosen from the corpus size and the CPUs)")
    if not 0 <= options.num_out_files <= 100_000:
        raise cli.UserError(f"--num_out_files={options.num_out_files} must be in [0, 100000] "
                            "(0 chooses from the corpus size)")
    if not 0 <= options.eval_fraction < 1:
        raise cli.UserError(f"--eval_fraction={options.eval_fraction} must be in [0, 1)")
    if not options.output_dir:
        raise cli.UserError("--output_dir is required")


def open_corpus(options: BuildOptions):
    if options.tfds_name:
        return sources.TfdsCorpus(options.tfds_name, options.tfds_split, options.tfds_text_key,
                                  options.blanks_separate_docs)
    paths = sources.resolve_files(options.corpus_dir, list(options.corpus_files))
    return sources.FileCorpus(paths, options.blanks_separate_docs)


def plan_shards(corpus, num_out_files: int, eval_fraction: float) -> list[ShardTask]:
    size = corpus.total_size
    if eval_fraction > 0:
        n_eval = max(1, round(num_out_files * eval_fraction))
        n_train = max(1, num_out_files - n_eval)
        cut = size - max(1, round(size * eval_fraction))
    else:
        n_eval, n_train, cut = 0, num_out_files, size
    tasks = [ShardTask(i, "train", i, n_train, r)
             for i, r in enumerate(corpus.ranges(0, cut, n_train))]
    if n_eval:
        tasks += [ShardTask(n_train + j, "eval", j, n_eval, r)
                  for j, r in enumerate(corpus.ranges(cut, size, n_eval))]
    return tasks




# ---------------------------------------------------------------------------------------------
# One shard (built in a worker process or in a thread of the main process)

@dataclasses.dataclass
class WorkerContext:
    corpus: object
    tokenizer: object
    output_dir: str
    max_seq_length: int
    seed: int
    report: Callable[[int, int, int, int], None]  # (shard index, position, documents, tokens)


def build_shard(task: ShardTask, ctx: WorkerContext) -> dict:
    """Writes one shard (temp file, then rename) and returns its statistics."""
    tokenizer = ctx.tokenizer
    builder = ExampleBuilder(ctx.max_seq_length, tokenizer.cls_id, tokenizer.sep_id,
                             shard_rng(ctx.seed, task.index))
    stats = {"documents": 0, "sentences": 0, "corpus_wordpieces": 0, "unk_wordpieces": 0,
             "examples": 0, "tokens": 0, "single_segment": 0, "full_length": 0,
             "length_counts": np.zeros(ctx.max_seq_length + 1, dtype=np.int64),
             "undecodable_bytes": 0}
    undecodable_before = sources.undecodable_bytes_so_far()
    position = [0]
    # unique per process: a worker orphaned by a killed run may still be finishing this shard
    tmp_path = task.state_path(ctx.output_dir, f".{os.getpid()}.partial")
    final_path = task.final_path(ctx.output_dir)
    tf.io.gfile.makedirs(io.dirname(final_path))
    lines: list[str] = []
    document_ends: list[bool] = []
    chars = 0

    with tf.io.TFRecordWriter(tmp_path) as writer:
        def flush():
            if lines:
                ragged = tokenizer.tokenize(tf.constant(lines, tf.string))
                flat = ragged.flat_values.numpy()
                builder.add_sentences(flat.astype(np.int32), ragged.row_splits.numpy(),
                                      document_ends)
                stats["sentences"] += len(lines)
                stats["corpus_wordpieces"] += int(flat.size)
                stats["unk_wordpieces"] += int(np.count_nonzero(flat == tokenizer.unk_id))
                lines.clear()
                document_ends.clear()
            examples = builder.take_examples()
            for record in examples.records:
                writer.write(record)
            _add_example_stats(stats, examples, ctx.max_seq_length)
            ctx.report(task.index, position[0], stats["documents"], stats["corpus_wordpieces"])

        for line in ctx.corpus.read(task.range, position):
            if line is None:
                stats["documents"] += 1
                if document_ends:
                    document_ends[-1] = True
                else:  # the document's sentences are already in the builder
                    builder.end_document()
                continue
            lines.append(line)
            document_ends.append(False)
            chars += len(line)
            if chars >= BLOCK_CHARS:
                flush()
                chars = 0
        flush()

    stats["undecodable_bytes"] = sources.undecodable_bytes_so_far() - undecodable_before
    stats["length_counts"] = stats["length_counts"].tolist()
    stats["shard"] = task.relative_path
    io.write_bytes(task.state_path(ctx.output_dir, ".stats.json"), json.dumps(stats).encode())
    tf.io.gfile.rename(tmp_path, final_path, overwrite=True)
    ctx.report(task.index, task.range.stop - task.range.start, stats["documents"],
               stats["corpus_wordpieces"])
    return stats


def _add_example_stats(stats: dict, examples, max_seq_length: int) -> None:
    lengths = examples.lengths
    stats["examples"] += len(examples)
    stats["tokens"] += int(lengths.sum())
    stats["single_segment"] += int(np.count_nonzero(examples.segment_b_start == lengths))
    stats["full_length"] += int(np.count_nonzero(lengths == max_seq_length))
    stats["length_counts"] += np.bincount(lengths, minlength=max_seq_length + 1)


def make_tokenizer(vocab_file: str, do_lower_case: bool, strip_accents: bool,
                   rules: tuple | None = None):
    """The build's tokenizer; `rules`: tokenization.unicode_rules() from the main process."""
    if rules is not None:  # a worker process: builds one tokenizer in its life
        from electra_tf.tokenization import Tokenizer

        return Tokenizer(vocab_file, do_lower_case, strip_accents, rules=rules)
    return _cached_tokenizer(vocab_file, io.sha256_file(vocab_file), do_lower_case, strip_accents)


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(vocab_file: str, vocab_sha256: str, do_lower_case: bool,
                      strip_accents: bool):
    """Building the tokenizer takes seconds; repeated builds in one process share it."""
    from electra_tf.tokenization import Tokenizer

    return Tokenizer(vocab_file, do_lower_case=do_lower_case, strip_accents=strip_accents)


def _take_task(tasks: list, counter) -> ShardTask | None:
    """The next unclaimed shard (shared by all processes and threads), or None when done."""
    with counter.get_lock():
        index = counter.value
        if index >= len(tasks):
            return None
        counter.value = index + 1
    return tasks[index]


def _work(tasks, counter, corpus, vocab_file, options: BuildOptions, output_dir, reports,
          rules, workers: int, parent_pid: int | None = None):
    """Builds shards until none is left; reports ("progress", ...), ("done", index) or
    ("error", is_user_error, message). Runs in each worker process and in a main-process
    thread. The main process's thread first hands the tokenizer's Unicode rules to the
    `workers` through the `rules` queue, which they read once they have imported TensorFlow."""
    try:
        if parent_pid is None:
            from electra_tf.tokenization import unicode_rules

            shared = unicode_rules() if workers else None
            for _ in range(workers):
                rules.put(shared)
            tokenizer = make_tokenizer(vocab_file, options.do_lower_case, options.strip_accents)
        else:
            tokenizer = make_tokenizer(vocab_file, options.do_lower_case, options.strip_accents,
                                       rules.get())
        ctx = WorkerContext(corpus, tokenizer, output_dir, options.max_seq_length, options.seed,
                            lambda *args: reports.put(("progress", *args)))
        # a worker whose main process was killed stops, leaving the rest to a re-run
        while parent_pid is None or os.getppid() == parent_pid:
            if (task := _take_task(tasks, counter)) is None:
                break
            build_shard(task, ctx)
            reports.put(("done", task.index))
    except cli.UserError as e:
        reports.put(("error", True, str(e)))
    except BaseException:
        reports.put(("error", False, traceback.format_exc()))


def _worker_process(*args):
    # One process per core: TensorFlow's own thread pools would only compete with the others.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _work(*args)


# ---------------------------------------------------------------------------------------------
# The whole build

def manifest_for(options: BuildOptions, corpus, vocab_identity, num_out_files: int) -> dict:
    return {
        "version": MANIFEST_VERSION,
        "corpus": corpus.fingerprint(),
        "vocab": vocab_identity,
        "num_out_files": num_out_files,
        **{k: getattr(options, k) for k in (
            "max_seq_length", "eval_fraction", "do_lower_case", "strip_accents",
            "blanks_separate_docs", "seed")},
    }


def _our_files(output_dir: str) -> list[str]:
    found = []
    for directory in (output_dir, io.join(output_dir, EVAL_DIR)):
        if tf.io.gfile.isdir(directory):
            found += [io.join(directory, name) for name in tf.io.gfile.listdir(directory)
                      if SHARD_PATTERN.fullmatch(name) or name == INFO_FILE]
    return found


def check_output_dir(output_dir: str, manifest: dict, overwrite: bool) -> bool:
    """Decides between a fresh build and a resume (True), or refuses; writes nothing."""
    exists = io.checked(tf.io.gfile.exists, output_dir, "--output_dir")
    is_dir = exists and tf.io.gfile.isdir(output_dir)
    if exists and not is_dir:
        raise cli.UserError(f"--output_dir={output_dir} exists and is not a directory")
    if overwrite or not is_dir or not tf.io.gfile.listdir(output_dir):
        return False
    try:
        previous = io.read_json(io.join(output_dir, STATE_DIR, MANIFEST_FILE))
    except (tf.errors.OpError, ValueError):
        previous = None
    if previous != manifest:
        raise cli.UserError(f"--output_dir={output_dir} is not empty; pass --overwrite to "
                            f"replace its shards (other files are kept)")
    return True


def init_output_dir(output_dir: str, manifest: dict, resuming: bool, learned_vocab: bool,
                    log) -> None:
    state_dir = io.join(output_dir, STATE_DIR)
    if resuming:
        for path in tf.io.gfile.glob(io.join(state_dir, "*.partial")):
            tf.io.gfile.remove(path)
        return
    # A fresh build (possibly --overwrite): replace this builder's own files only.
    stale = _our_files(output_dir)
    learned = io.join(output_dir, LEARNED_VOCAB_FILE)
    if learned_vocab and tf.io.gfile.exists(learned):
        stale.append(learned)
    for path in stale:
        tf.io.gfile.remove(path)
    if tf.io.gfile.isdir(state_dir):
        tf.io.gfile.rmtree(state_dir)
    if stale:
        log(f"--overwrite: removed {len(stale)} files of an earlier build in {output_dir}")
    tf.io.gfile.makedirs(state_dir)
    io.write_bytes(io.join(state_dir, MANIFEST_FILE), json.dumps(manifest, indent=1).encode())


@dataclasses.dataclass
class BuildPlan:
    """What a build writes, decided (and the output directory prepared) before any shard is
    built: the local runner and the Beam pipeline (data_prep/beam_build.py) both execute it."""

    options: BuildOptions
    corpus: object
    output_dir: str
    vocab_file: str
    vocab: list
    num_out_files: int
    tasks: list
    pending: list
    start_time: float


def plan(options: BuildOptions, log=print) -> BuildPlan:
    """Validates the options, opens the corpus, decides fresh build or resume (refusing a
    non-empty output directory of another build), prepares output_dir, learns the vocabulary if
    asked, and lists the shards still to build."""
    start_time = time.monotonic()
    validate(options)
    corpus = open_corpus(options)
    output_dir = io.absolute(options.output_dir)
    size_for_default = getattr(corpus, "estimated_bytes", corpus.total_size)
    num_out_files = options.num_out_files or default_num_out_files(size_for_default)
    if options.vocab_file:
        vocab_file = io.absolute(options.vocab_file)
        if not io.checked(lambda p: tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p),
                          vocab_file, "--vocab_file"):
            raise cli.UserError(f"--vocab_file={options.vocab_file}: no such file")
        vocab_identity = {"sha256": io.sha256_file(vocab_file)}
    else:
        vocab_file = io.join(output_dir, LEARNED_VOCAB_FILE)
        vocab_identity = {"learn_vocab_size": options.learn_vocab_size}
    manifest = manifest_for(options, corpus, vocab_identity, num_out_files)
    resuming = check_output_dir(output_dir, manifest, options.overwrite)
    from electra_tf.tokenization import load_vocab

    if options.vocab_file:  # validates the vocabulary before anything is written
        vocab = load_vocab(vocab_file)
    init_output_dir(output_dir, manifest, resuming, bool(options.learn_vocab_size), log)

    if options.learn_vocab_size:
        if not (resuming and tf.io.gfile.exists(vocab_file)):
            _learn_vocab(corpus, options, vocab_file, log)
        vocab = load_vocab(vocab_file)

    tasks = plan_shards(corpus, num_out_files, options.eval_fraction)
    pending = [t for t in tasks if not tf.io.gfile.exists(t.final_path(output_dir))]
    if resuming:
        log(f"resuming in {output_dir}: {len(tasks) - len(pending)} of {len(tasks)} shards "
            f"already complete")
    return BuildPlan(options, corpus, output_dir, vocab_file, vocab, num_out_files, tasks,
                     pending, start_time)


def finish(build_plan: BuildPlan, log=print) -> dict:
    """Writes dataset_info.json (and eval/dataset_info.json) from the shards' statistics and
    prints the summary; returns the training split's dataset_info."""
    p = build_plan
    shard_stats = {t: io.read_json(t.state_path(p.output_dir, ".stats.json")) for t in p.tasks}
    infos = {}
    for split in ("train", "eval"):
        split_tasks = [t for t in p.tasks if t.split == split]
        if split_tasks:
            infos[split] = _dataset_info(split, [shard_stats[t] for t in split_tasks],
                                         p.options, p.corpus, p.vocab, p.vocab_file,
                                         p.num_out_files)
    if "eval" in infos:
        infos["train"]["eval"] = {"dir": EVAL_DIR, **{k: infos["eval"][k] for k in (
            "shards_pattern", "examples", "tokens", "documents")}}
        io.write_bytes(io.join(p.output_dir, EVAL_DIR, INFO_FILE),
                       json.dumps(infos["eval"], indent=1).encode())
    io.write_bytes(io.join(p.output_dir, INFO_FILE),
                   json.dumps(infos["train"], indent=1).encode())
    log(summary(infos, p.output_dir, time.monotonic() - p.start_time))
    return infos["train"]


def build(options: BuildOptions, log=print) -> dict:
    """Builds (or resumes) the dataset with local processes; returns the training split's
    dataset_info."""
    build_plan = plan(options, log)
    pending = build_plan.pending
    processes = min(options.num_processes
                    or default_num_processes(build_plan.corpus, pending), max(1, len(pending)))
    log(f"building {len(pending)} shards from {describe_source(build_plan.corpus)} with "
        f"{processes} process{'es' if processes > 1 else ''} ...")
    _run_tasks(pending, build_plan.corpus, build_plan.vocab_file, options,
               build_plan.output_dir, processes)
    return finish(build_plan, log)


def describe_source(corpus) -> str:
    if isinstance(corpus, sources.TfdsCorpus):
        return f"TFDS {corpus.name}[{corpus.split}] ({corpus.num_examples:,} examples)"
    return f"{len(corpus.files)} file(s), {corpus.total_size / 1e6:,.1f} MB"


def _learn_vocab(corpus, options: BuildOptions, vocab_file: str, log) -> None:
    from data_prep import vocab_learning

    log(f"learning a {options.learn_vocab_size:,}-token WordPiece vocabulary ...")
    progress = cli.Progress(0, "lines")
    counts = vocab_learning.count_words(corpus.read(sources.Range(0, corpus.total_size)),
                                        options.do_lower_case, options.strip_accents, progress)
    vocab = vocab_learning.learn_vocabulary(counts, options.learn_vocab_size)
    vocab_learning.write_vocabulary(vocab, vocab_file)
    log(f"wrote {vocab_file} ({len(vocab):,} tokens)")


def _run_tasks(pending: list[ShardTask], corpus, vocab_file: str, options: BuildOptions,
               output_dir: str, processes: int) -> None:
    """Builds the pending shards in this process and (processes - 1) spawned workers.

    Everyone claims the next shard from a shared counter when ready, so the main process (whose
    tokenizer is ready first; it works in a thread, TensorFlow releases the GIL) starts at once
    while the workers still import TensorFlow, and nobody waits behind a slow starter.
    """
    if not pending:
        return
    total = sum(t.range.stop - t.range.start for t in pending)
    is_tfds = isinstance(corpus, sources.TfdsCorpus)
    unit_scale = 1 if is_tfds else 1e6
    progress = cli.Progress(total / unit_scale, "examples" if is_tfds else "MB")
    positions: dict[int, tuple] = {}

    def show(force=False):
        progress.update(sum(v[0] for v in positions.values()) / unit_scale, force=force,
                        docs=sum(v[1] for v in positions.values()),
                        tokens=sum(v[2] for v in positions.values()))

    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    reports, rules = context.Queue(), context.Queue()
    args = (pending, counter, corpus, vocab_file, options, output_dir, reports, rules,
            processes - 1)
    workers = [context.Process(target=_worker_process, args=(*args, os.getpid()), daemon=True)
               for _ in range(processes - 1)]
    for worker in workers:  # they import TensorFlow while this process already works
        worker.start()
    local = threading.Thread(target=_work, args=args, daemon=True)
    local.start()
    finished = 0
    try:
        while finished < len(pending):
            try:
                message = reports.get(timeout=0.5)
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"a worker process died (exit code {dead[0].exitcode})") from None
                if not local.is_alive() and all(w.exitcode is not None for w in workers):
                    raise RuntimeError("all workers stopped with shards left to build") from None
                continue
            if message[0] == "progress":
                positions[message[1]] = message[2:]
                show()
            elif message[0] == "done":
                finished += 1
            else:
                _, is_user_error, text = message
                raise cli.UserError(text) if is_user_error else RuntimeError(text)
        show(force=True)
        for worker in workers:  # all shards are done: one still starting up has nothing to do
            worker.terminate()
    except BaseException:
        with counter.get_lock():  # nobody claims another shard
            counter.value = len(pending)
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for worker in workers:
            worker.join()
        local.join()


def _dataset_info(split: str, stats: list[dict], options: BuildOptions, corpus,
                  vocab: list[str], vocab_file: str, num_out_files: int) -> dict:
    def total(key):
        return sum(s[key] for s in stats)

    examples = total("examples")
    wordpieces = total("corpus_wordpieces")
    counts = np.sum([s["length_counts"] for s in stats], axis=0)
    width = math.ceil(options.max_seq_length / HISTOGRAM_BINS)
    histogram = {}
    for lo in range(1, options.max_seq_length + 1, width):
        hi = min(lo + width - 1, options.max_seq_length)
        histogram[f"{lo}-{hi}"] = int(counts[lo:hi + 1].sum())
    count = len(stats)
    return {
        "split": split,
        "shards": [io.basename(s["shard"]) for s in stats],
        "shards_pattern": f"{SHARD_PREFIX}-*-of-{count:05d}",
        "features": {name: f"int64[{options.max_seq_length}]"
                     for name in ("input_ids", "input_mask", "segment_ids")},
        "max_seq_length": options.max_seq_length,
        "examples": examples,
        "tokens": total("tokens"),
        "documents": total("documents"),
        "sentences": total("sentences"),
        "corpus_wordpieces": wordpieces,
        "unk_rate": total("unk_wordpieces") / max(1, wordpieces),
        "single_segment_fraction": total("single_segment") / max(1, examples),
        "full_length_fraction": total("full_length") / max(1, examples),
        "mean_length": total("tokens") / max(1, examples),
        "length_histogram": histogram,
        "undecodable_bytes": total("undecodable_bytes"),
        "vocab_file": vocab_file,
        "vocab_sha256": io.sha256_file(vocab_file),
        "vocab_size": len(vocab),
        "do_lower_case": options.do_lower_case,
        "strip_accents": options.strip_accents,
        "source": corpus.describe(),
        "num_out_files": num_out_files,
        "flags": {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in dataclasses.asdict(options).items()},
    }


def summary(infos: dict, output_dir: str, elapsed: float) -> str:
    train = infos["train"]
    lines = [f"done in {cli.format_duration(elapsed)}: {output_dir}"]
    for split, info in infos.items():
        where = io.join(output_dir, *([EVAL_DIR] if split == "eval" else []),
                        info["shards_pattern"])
        lines.append(
            f"  {split:5s} {info['examples']:,} examples in {len(info['shards'])} shards "
            f"({where}) | {info['documents']:,} documents | {info['tokens']:,} tokens | "
            f"mean length {info['mean_length']:.1f} | full length "
            f"{info['full_length_fraction']:.1%} | single segment "
            f"{info['single_segment_fraction']:.1%}")
    wordpieces = sum(i["corpus_wordpieces"] for i in infos.values())
    unk = sum(i["unk_rate"] * i["corpus_wordpieces"] for i in infos.values())
    undecodable = sum(i["undecodable_bytes"] for i in infos.values())
    lines.append(f"  corpus: {wordpieces:,} wordpieces, [UNK] rate {unk / max(1, wordpieces):.3%},"
                 f" {undecodable:,} undecodable bytes replaced")
    lines.append(f"  vocab: {train['vocab_file']} ({train['vocab_size']:,} tokens, sha256 "
                 f"{train['vocab_sha256'][:12]}...)")
    lines.append(f"  dataset_info: {io.join(output_dir, INFO_FILE)}")
    return "\n".join(lines)
