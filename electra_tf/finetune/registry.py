"""Every fine-tuning task name (`--task=`) and task kind, collected from the modules that define
them.

Each module below declares its records (kinds.py) in module-level tuples: `TASKS` for the task
names it reads, `KINDS` for the kinds of model it brings. A new data set of a known kind adds a
`TaskName` to its module's `TASKS`; a new kind of task is a module with both, named once in
`FAMILIES`. The fine-tuning runner, checkpoint_io and the export look names and kinds up here.
"""

from electra_tf.cli import UserError
from electra_tf.finetune import conll, glue, model, tabular
from electra_tf.finetune.kinds import TaskKind, TaskName
from electra_tf.finetune.squad import task as squad_task

FAMILIES = (model, glue, tabular, conll, squad_task)


def collect(families) -> tuple[dict, dict]:
    """({kind name: TaskKind}, {task name: TaskName}) declared by the modules `families`; a
    name declared twice is a ValueError."""
    tables = []
    for attribute in ("KINDS", "TASKS"):
        records = {}
        for module in families:
            for record in getattr(module, attribute, ()):
                if record.name in records:
                    raise ValueError(f"{attribute} of {module.__name__}: {record.name!r} is "
                                     "declared twice")
                records[record.name] = record
        tables.append(records)
    return tables[0], tables[1]


KINDS, TASKS = collect(FAMILIES)


def kind(name: str) -> TaskKind:
    """The task kind named in a finetune_task.json; UserError for an unknown one."""
    if name not in KINDS:
        raise UserError(f"no fine-tuning model for task kind {name!r}; known kinds: "
                        f"{', '.join(KINDS)}")
    return KINDS[name]


def task_name(name: str) -> TaskName:
    if name not in TASKS:
        raise UserError(f"--task={name!r} is not a task; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_descriptions() -> dict:
    return {name: TASKS[name].description for name in sorted(TASKS)}


def get_task(name: str, options):
    """The task named `name` (a tasks.Task), configured from `options` (FinetuneOptions)."""
    return task_name(name).make(options)
