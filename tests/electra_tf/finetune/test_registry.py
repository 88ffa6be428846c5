"""Task names and kinds come from one record each, declared by the module that implements them:
a new kind is one record, and checkpoint_io and the export find it there. The run options have
the flags' defaults and are validated in one place."""

import dataclasses
import json
import os
import types

import pytest
import tensorflow as tf

from electra_tf import checkpoint_io
from electra_tf.cli import UserError
from electra_tf.export import saved_model
from electra_tf.finetune import model as model_lib
from electra_tf.finetune import options as options_lib
from electra_tf.finetune import registry, serving
from electra_tf.finetune.kinds import TaskKind, TaskName
from tests.electra_tf.finetune.helpers import VOCAB, tiny_config


def test_every_task_and_kind_is_declared_once():
    assert list(registry.KINDS) == ["classification", "regression", "tagging", "span"]
    assert [k.head for k in registry.KINDS.values()] == ["classifier", "regressor", "tagger",
                                                          "qa"]
    assert sorted(registry.TASKS) == sorted(
        ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "classification",
         "regression", "tagging", "chunking", "squad", "squadv1"])
    assert saved_model.HEADS[3:] == ("classifier", "regressor", "tagger", "qa")
    with pytest.raises(UserError, match="--task='nope' is not a task; valid tasks: "
                                        "chunking, classification, cola"):
        registry.get_task("nope", options_lib.FinetuneOptions())
    with pytest.raises(UserError, match="no fine-tuning model for task kind 'nope'"):
        registry.kind("nope")


def test_the_references_per_task_lengths_and_epochs():
    """Length 128, 256 for chunking, 512 for QA; 3 epochs, 10 for RTE and STS-B, 2 for QA."""
    lengths = {name: registry.task_name(name).max_seq_length for name in registry.TASKS}
    assert lengths.pop("chunking") == 256
    assert lengths.pop("squad") == lengths.pop("squadv1") == 512
    assert set(lengths.values()) == {128}
    options = options_lib.FinetuneOptions(train_file="t.conll", max_seq_length=512)
    epochs = {name: registry.get_task(name, options).default_epochs
              for name in ("cola", "mrpc", "rte", "stsb", "tagging", "chunking", "squad")}
    assert epochs == {"cola": 3, "mrpc": 3, "rte": 10, "stsb": 10, "tagging": 3,
                      "chunking": 3, "squad": 2}


def _toy_kind() -> TaskKind:
    """A kind of its own (here a classifier under another name and head)."""
    return TaskKind(
        "toy", head="toy_head",
        build_model=lambda metadata, config: model_lib.SequenceModel(config, 2),
        build_serving=lambda tokenizer, model, metadata, max_seq_length, model_dir:
            serving.TaskServing(tokenizer, model, max_seq_length, metadata["labels"]))


def test_a_new_family_is_one_module_with_its_records():
    toy = types.ModuleType("toy_family")
    toy.KINDS = (_toy_kind(),)
    toy.TASKS = (TaskName("toy", lambda options: None, "a toy task"),)
    kinds, tasks = registry.collect(registry.FAMILIES + (toy,))
    assert kinds["toy"] is toy.KINDS[0] and tasks["toy"] is toy.TASKS[0]
    assert kinds.keys() - {"toy"} == registry.KINDS.keys()
    with pytest.raises(ValueError, match="'toy' is declared twice"):
        registry.collect(registry.FAMILIES + (toy, toy))


def test_checkpoint_io_and_export_find_a_registered_kind(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.KINDS, "toy", _toy_kind())
    config = tiny_config()
    model = model_lib.SequenceModel(config, 2)
    directory = str(tmp_path / "model")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 1).save(0)
    config.save(os.path.join(directory, "config.json"))
    with open(os.path.join(directory, "finetune_task.json"), "w") as f:
        json.dump({"task": "toy", "kind": "toy", "labels": ["x", "y"], "max_seq_length": 8}, f)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    opened = checkpoint_io.open_checkpoint(directory)
    assert opened.head == "toy_head"
    module = saved_model.build_serving_module(opened, str(vocab))
    assert module.serve(tf.constant(["good film"]))["label"].numpy()[0] in (b"x", b"y")


def test_options_have_the_flag_defaults():
    from absl import flags

    from electra_tf.finetune import flags as finetune_flags  # noqa: F401 (defines the flags)
    defaults = options_lib.FinetuneOptions()
    for field in dataclasses.fields(options_lib.FinetuneOptions):
        assert flags.FLAGS[field.name].default == getattr(defaults, field.name), field.name


@pytest.mark.parametrize("values, message", [
    ({"task": None}, "--task is required"),
    ({"eval_batch_size": 0}, "--eval_batch_size=0 must be at least 1"),
    ({"n_best_size": 0}, "--n_best_size=0 must be at least 1"),
    ({"warmup_proportion": 1.5}, r"--warmup_proportion=1.5 must be in \[0, 1\]"),
    ({"layerwise_lr_decay": 0.0}, r"--layerwise_lr_decay=0.0 must be in \(0, 1\]"),
    ({"do_train": False, "do_eval": False}, "nothing to do"),
    ({"task": "nope"}, "--task='nope' is not a task"),
])
def test_options_are_validated_once_when_built(values, message):
    good = dict(task="squad", vocab_file="vocab.txt", model_dir="m")
    with pytest.raises(UserError, match=message):
        options_lib.build(**{**good, **values})
    assert options_lib.build(**good).max_seq_length == 512
    assert options_lib.build(**good, max_seq_length=64).max_seq_length == 64
