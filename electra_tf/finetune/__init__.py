"""Fine-tuning of the pre-trained discriminator (docs/RECIPE.md "Fine-tuning"): the task kinds
and tasks (kinds.py, registry.py, tasks.py, model.py, the readers, squad/), and the run that
trains, evaluates and predicts them (options.py, flags.py, runner.py)."""
