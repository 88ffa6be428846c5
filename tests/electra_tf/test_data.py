"""Tests of electra_tf/data.py: batches, example_index, sharding, shuffling and shard validation."""

import os

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import data
from electra_tf.cli import UserError
from tests.electra_tf.training.helpers import write_shards

SEQ = 16


def _take(dataset, n):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(n)]


def _records(pattern):
    """All examples' input_ids in file order, independently of the pipeline under test."""
    rows = []
    for path in sorted(tf.io.gfile.glob(pattern)):
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy())
            rows.append(tuple(example.features.feature["input_ids"].int64_list.value))
    return rows


def test_eval_batches_follow_the_files_in_order_and_carry_example_index(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=2, examples_per_file=10, seq_length=SEQ)
    batches = _take(data.pretraining_dataset(pattern, 4, SEQ, is_training=False), 6)
    expected = _records(pattern)
    for number, batch in enumerate(batches):
        assert batch["input_ids"].dtype == np.int32 and batch["input_ids"].shape == (4, SEQ)
        assert batch["input_mask"].shape == batch["segment_ids"].shape == (4, SEQ)
        np.testing.assert_array_equal(batch["example_index"], number * 4 + np.arange(4))
        for row, index in zip(batch["input_ids"], batch["example_index"]):
            # Eval repeats the 20 examples in order.
            assert tuple(row) == expected[index % len(expected)]


def test_training_stream_is_seeded_and_shuffled(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=3, examples_per_file=20, seq_length=SEQ)

    def stream(seed):
        batches = _take(data.pretraining_dataset(pattern, 6, SEQ, is_training=True, seed=seed),
                        10)
        return np.concatenate([b["input_ids"] for b in batches])

    first, again, other = stream(1), stream(1), stream(2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    in_order = np.array(_records(pattern)[:len(first)])
    assert not np.array_equal(first, in_order)
    assert set(map(tuple, first)) <= set(_records(pattern))


def test_pipelines_read_disjoint_files_and_index_their_rows_of_the_global_batch(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=2, examples_per_file=12, seq_length=SEQ)
    per_file = {}
    for path in sorted(tf.io.gfile.glob(pattern)):
        per_file[path] = set(_records(path))
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                             num_replicas_in_sync=4)
        batches = _take(data.pretraining_dataset(pattern, 8, SEQ, is_training=True, seed=3,
                                                 input_context=context), 3)
        rows = {tuple(r) for b in batches for r in b["input_ids"]}
        assert any(rows <= ids for ids in per_file.values())  # one file per pipeline
        seen.append(rows)
        for number, batch in enumerate(batches):
            assert batch["input_ids"].shape == (4, SEQ)
            np.testing.assert_array_equal(batch["example_index"],
                                          number * 8 + pipeline * 4 + np.arange(4))
    assert not seen[0] & seen[1]


@pytest.mark.parametrize("pipelines", [1, 2])
def test_a_stream_started_at_batch_k_is_the_full_stream_without_its_first_k_batches(
        tmp_path, pipelines):
    # 3 files x 10 records, batches of 4 per pipeline: k = 7 crosses an epoch of the files, so
    # the file order reshuffled per epoch and the record shuffle buffer both matter.
    pattern = write_shards(str(tmp_path), num_files=3 * pipelines, examples_per_file=10,
                           seq_length=SEQ)
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, pipelines)

        def stream(start, n, context=context):
            return _take(data.pretraining_dataset(pattern, 4 * pipelines, SEQ, is_training=True,
                                                  seed=3, input_context=context,
                                                  start_batch=start), n)

        full = stream(0, 12)[7:]
        resumed = stream(7, 5)
        for want, got in zip(full, resumed, strict=True):
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
        # example_index goes on counting global batches from k.
        np.testing.assert_array_equal(resumed[0]["example_index"],
                                      7 * 4 * pipelines + pipeline * 4 + np.arange(4))


def test_fewer_files_than_pipelines_shards_records(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=1, examples_per_file=8, seq_length=SEQ)
    rows = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        batch = _take(data.pretraining_dataset(pattern, 8, SEQ, is_training=False,
                                               input_context=context), 1)[0]
        rows.append([tuple(r) for r in batch["input_ids"]])
    expected = _records(pattern)
    assert rows[0] == expected[0::2] and rows[1] == expected[1::2]


def test_no_matching_files_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no files match --train_files"):
        data.pretraining_dataset(str(tmp_path / "nothing-*"), 4, SEQ, is_training=True)


def test_sequence_length_mismatch_is_found_in_dataset_info_and_in_records(tmp_path):
    pattern = write_shards(str(tmp_path / "a"), num_files=1, examples_per_file=4, seq_length=SEQ)
    with pytest.raises(UserError, match="max_seq_length=16 .*--max_seq_length=32"):
        data.pretraining_dataset(pattern, 4, 32, is_training=True)
    bare = write_shards(str(tmp_path / "b"), num_files=1, examples_per_file=4, seq_length=SEQ,
                        info=False)
    with pytest.raises(UserError, match="input_ids has length 16 but --max_seq_length=32"):
        data.pretraining_dataset(bare, 4, 32, is_training=True)


def test_garbage_file_is_named(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=2, examples_per_file=4, seq_length=SEQ)
    bad = sorted(tf.io.gfile.glob(pattern))[1]
    with open(bad, "wb") as f:
        f.write(os.urandom(200))
    with pytest.raises(UserError, match=os.path.basename(bad)):
        data.pretraining_dataset(pattern, 4, SEQ, is_training=True)


def test_corrupt_record_in_the_middle_is_named_after_the_read_error(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=2, examples_per_file=30, seq_length=SEQ)
    bad = sorted(tf.io.gfile.glob(pattern))[0]
    raw = bytearray(open(bad, "rb").read())
    raw[len(raw) // 2] ^= 0xFF  # breaks one record's CRC; the first record stays readable
    open(bad, "wb").write(bytes(raw))
    dataset = data.pretraining_dataset(pattern, 4, SEQ, is_training=True)  # passes the check
    with pytest.raises(tf.errors.DataLossError) as error:
        _take(dataset, 100)
    message = str(data.corrupt_file_error(pattern, SEQ, error.value))
    assert bad in message and "corrupt record" in message


def test_read_dataset_info(tmp_path):
    pattern = write_shards(str(tmp_path), num_files=1, examples_per_file=4, seq_length=SEQ)
    files = data.expand_file_patterns(pattern)
    assert data.read_dataset_info(files)["max_seq_length"] == SEQ
    assert all(not f.endswith(".json") for f in files)
    (tmp_path / "dataset_info.json").write_text("{not json")
    with pytest.raises(UserError, match="dataset_info.json: not valid JSON"):
        data.read_dataset_info(files)


def test_describe_input_names_every_shard_with_its_size_and_the_sequence_length(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative names are recorded absolute, however given
    write_shards("shards", num_files=2, examples_per_file=3, seq_length=16)
    files = data.expand_file_patterns("shards/pretrain_data.tfrecord-*")
    description = data.describe_input(files, 16)
    assert description == {"max_seq_length": 16, "files": [
        {"path": str(tmp_path / "shards" / name), "bytes": os.path.getsize(tmp_path / "shards"
                                                                           / name)}
        for name in ("pretrain_data.tfrecord-00000-of-00002",
                     "pretrain_data.tfrecord-00001-of-00002")]}
    assert description["files"][0]["bytes"] > 3 * 16
    assert data.describe_input(files, 32) != description
