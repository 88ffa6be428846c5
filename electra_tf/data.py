"""Pre-training input pipeline: the recipe's TFRecord shards -> batches for the ELECTRA step.

Reads the shards written by `build_pretraining_dataset` (features `input_ids`, `input_mask`,
`segment_ids`, int64 of length max_seq_length). Nothing is precomputed in the data: masking and
sampling happen in the model, keyed by each example's `example_index`, which this pipeline adds:
the example's position in the global stream (batch_number * global_batch_size + row), so the
random masks do not depend on how many workers or replicas share a batch.

Training: files are sharded across input pipelines (workers), shuffled (seeded: the op seeds
combine with TensorFlow's global seed, which the pre-training app sets from --seed), read
interleaved, shuffled again per record, repeated, batched with drop_remainder, prefetched.
Evaluation: files in sorted order, no shuffling, repeated, so every evaluation reads the same
batches.
"""

import tensorflow as tf

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.io import first_line

# The features of every example, in the TFRecords and as the encoder's inputs (sorted: the
# data stage serializes them in this order).
INPUT_KEYS = ("input_ids", "input_mask", "segment_ids")
SHUFFLE_BUFFER = 4096


def expand_file_patterns(file_patterns, flag: str = "--train_files") -> list:
    """Comma-separated globs (string or list) -> sorted unique file names; none -> UserError."""
    if isinstance(file_patterns, str):
        file_patterns = file_patterns.split(",")
    patterns = [p.strip() for p in file_patterns if p.strip()]
    if not patterns:
        raise UserError(f"{flag} is empty")
    files = set()
    for pattern in patterns:
        matched = io.checked(tf.io.gfile.glob, pattern, flag)
        if not matched:
            raise UserError(f"no files match {flag} pattern {pattern!r}")
        files.update(m for m in matched if not m.endswith(".json"))
    if not files:
        raise UserError(f"{flag} matches no TFRecord files (only dataset_info.json)")
    return sorted(files)


def read_dataset_info(files: list) -> dict:
    """The `dataset_info.json` written beside the shards, or {} when there is none."""
    directories = sorted({io.dirname(f) for f in files})
    for directory in directories:
        path = io.join(directory, "dataset_info.json")
        if tf.io.gfile.exists(path):
            try:
                return io.read_json(path)
            except ValueError as e:
                raise UserError(str(e)) from None
    return {}


def describe_input(files: list, max_seq_length: int) -> dict:
    """What a training stream is built from, for model_dir/input_stream.json: every shard (its
    absolute name and size in bytes) and the sequence length. Two runs with equal descriptions
    read the same stream; a resumed run with another one restarts its input."""
    return {"files": [{"path": io.absolute(f), "bytes": int(tf.io.gfile.stat(f).length)}
                      for f in files],
            "max_seq_length": int(max_seq_length)}


def _parse_fn(max_seq_length: int):
    spec = {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in INPUT_KEYS}

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        return {name: tf.cast(value, tf.int32) for name, value in example.items()}

    return parse


def check_shards(files: list, max_seq_length: int) -> None:
    """Fails fast on shards that cannot feed a model with `max_seq_length`.

    Checks dataset_info.json (when present) and the first record of every file, so a corrupt or
    foreign file is named before training starts rather than hours into it.
    """
    info = read_dataset_info(files)
    if "max_seq_length" in info and int(info["max_seq_length"]) != max_seq_length:
        raise UserError(
            f"shards in {io.dirname(files[0])} have max_seq_length="
            f"{info['max_seq_length']} (dataset_info.json) but --max_seq_length={max_seq_length}")
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except tf.errors.OpError as e:
            raise UserError(f"{path}: not a readable TFRecord file ({first_line(e)})") from None
        if first is None:
            continue
        try:
            example = tf.train.Example.FromString(first.numpy())
        except Exception:  # protobuf's DecodeError is not exported under a stable name
            raise UserError(f"{path}: first record is not a tf.train.Example") from None
        for name in INPUT_KEYS:
            if name not in example.features.feature:
                raise UserError(f"{path}: records lack the feature {name!r}")
            length = len(example.features.feature[name].int64_list.value)
            if length != max_seq_length:
                raise UserError(f"{path}: {name} has length {length} but "
                                f"--max_seq_length={max_seq_length}")


def pretraining_dataset(file_patterns, global_batch_size: int, max_seq_length: int, *,
                        is_training: bool, seed: int = 0,
                        input_context: tf.distribute.InputContext = None,
                        start_batch: int = 0) -> tf.data.Dataset:
    """Batches of {input_ids, input_mask, segment_ids: int32 [b, T], example_index: int64 [b]}.

    `start_batch` > 0 (training): the stream from global batch number `start_batch` on, the
    batches an iteration from the start would yield after that many; it reads and drops the
    records before them (serialized, before parsing: the cost of a resume is one read of them).

    With an `input_context` of P input pipelines, this pipeline (id p) reads 1/P of the files
    (or of the records, when there are fewer files than pipelines) and yields its share of each
    global batch, b = global_batch_size / P, whose rows are rows [p*b, (p+1)*b) of the global
    batch. A corrupt record met later surfaces as tf.errors.DataLossError while iterating:
    `corrupt_file_error` turns it into a UserError naming the file.
    """
    files = expand_file_patterns(file_patterns,
                                 "--train_files" if is_training else "--eval_files")
    check_shards(files, max_seq_length)
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if global_batch_size % pipelines:
        raise UserError(f"batch size {global_batch_size} is not divisible by the "
                        f"{pipelines} input pipelines (workers)")
    batch_size = global_batch_size // pipelines

    shard_files = len(files) >= pipelines
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    if is_training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
        dataset = dataset.interleave(
            tf.data.TFRecordDataset, cycle_length=min(8, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=1).repeat()
    if not shard_files:
        dataset = dataset.shard(pipelines, pipeline_id)
    if is_training:
        # Shuffle serialized records: smaller than parsed ones, and a resume skips them
        # before any parsing.
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed + 1, reshuffle_each_iteration=True)
    if start_batch:
        dataset = dataset.skip(start_batch * batch_size)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(_parse_fn(max_seq_length), num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
    dataset = dataset.enumerate(start=start_batch).map(
        _indexer(global_batch_size, pipeline_id * batch_size))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _indexer(global_batch_size: int, row_offset: int):
    def add_index(batch_number, features):
        rows = tf.shape(features["input_ids"], out_type=tf.int64)[0]
        features["example_index"] = (batch_number * global_batch_size + row_offset
                                     + tf.range(rows, dtype=tf.int64))
        return features

    return add_index


def corrupt_file_error(file_patterns, max_seq_length: int,
                       error: tf.errors.OpError) -> UserError:
    """Names the shard behind a read error met during training by re-reading every shard.

    TFRecord read errors do not say which file they came from; scanning only happens on this
    failure path, so a healthy run pays nothing for it.
    """
    parse = _parse_fn(max_seq_length)
    for path in expand_file_patterns(file_patterns):
        try:
            records = tf.data.TFRecordDataset(path).batch(256).map(parse)
            records.reduce(tf.constant(0, tf.int32), lambda n, _: n + 1)
        except tf.errors.OpError as e:
            return UserError(f"{path}: corrupt record ({first_line(e)})")
    return UserError(f"reading the input failed: {first_line(error)}")
