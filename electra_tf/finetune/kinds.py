"""The two records a fine-tuning family declares, and registry.py collects.

A task kind (`TaskKind`) is a kind of model: the discriminator plus one head (the recipe's
classifier and regressor on [CLS], a tagger per token, a span head for QA), rebuilt from the
task description saved in a fine-tuned model_dir (finetune_task.json, whose "kind" names it) and
served by its own raw-text signatures. A task name (`TaskName`) is one `--task=` value: a
reader of some data set for a task of some kind.

A module that implements tasks lists them in a module-level `TASKS` tuple, and the kinds it
brings in `KINDS`; registry.py names the module once.
"""

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """`name`: finetune_task.json "kind". `head`: the export's --head for it.
    `build_model(metadata, model_config)`: the task model, freshly initialized.
    `build_serving(tokenizer, model, metadata, max_seq_length, model_dir)`: the
    `electra_tf.serving.ServingModule` whose signatures serve the fine-tuned model."""

    name: str
    head: str
    build_model: Callable
    build_serving: Callable


@dataclasses.dataclass(frozen=True)
class TaskName:
    """`--task=name` builds `make(options)` (a `tasks.Task`; options: `FinetuneOptions`).
    `max_seq_length`: the task's length when --max_seq_length is unset (the recipe: 128, 512
    for question answering)."""

    name: str
    make: Callable
    description: str
    max_seq_length: int = 128
