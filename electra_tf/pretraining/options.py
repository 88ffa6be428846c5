"""The typed options of a pre-training run: what run_pretraining.py's flags say, as one value.

`electra_tf.pretraining.flags.options_from_flags` builds a `PretrainOptions` once, in the entry
script; `electra_tf.pretraining.app.run(options)` reads nothing else. The field defaults are the
flags' defaults (flags.py takes them from here), so a test or a script can build the options of
a run directly (the vocabulary gives the vocab size, which no flag sets):

    >>> options = PretrainOptions(train_files="data/*", model_dir="m", vocab_file="vocab.txt",
    ...                           model_size="demo", hidden_size=16)
    >>> options.model_config(vocab_size=100).hidden_size, options.objective_config().mask_prob
    (16, 0.15)

The sizes are the `--model_size` preset with the given fields replaced; the architecture fields
go to the `ModelConfig`, the objective fields to the `ObjectiveConfig` (electra_tf/config.py).
"""

import dataclasses

from electra_tf import config as config_lib
from electra_tf.cli import UserError
from electra_tf.training.runtime_flags import RuntimeOptions

# The preset fields a flag can replace (None: the preset's value), in the flags' order.
MODEL_OVERRIDES = ("embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                   "intermediate_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
                   "generator_hidden_size", "generator_layers", "max_seq_length", "mask_prob",
                   "gen_weight", "disc_weight", "temperature")


@dataclasses.dataclass(frozen=True)
class PretrainOptions(RuntimeOptions):
    """Every setting of a pre-training run (see --helpfull of run_pretraining.py)."""

    # Data and directories.
    train_files: str
    model_dir: str
    vocab_file: str
    eval_files: str = ""
    init_checkpoint: str = ""
    # Model size and objective: the preset, and the fields that replace its values.
    model_size: str = "small"
    embedding_size: int | None = None
    hidden_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    intermediate_size: int | None = None
    hidden_dropout_prob: float | None = None
    attention_probs_dropout_prob: float | None = None
    generator_hidden_size: float | None = None
    generator_layers: float | None = None
    max_seq_length: int | None = None
    mask_prob: float | None = None
    gen_weight: float | None = None
    disc_weight: float | None = None
    temperature: float | None = None
    # Optimization.
    train_batch_size: int = 128
    eval_batch_size: int = 0
    num_train_steps: int = 1_000_000
    learning_rate: float = 5e-4
    num_warmup_steps: int = 10_000
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    grad_accum_steps: int = 1
    seed: int = 0
    deterministic: bool = False
    # Devices, precision and checkpoints are RuntimeOptions (training/runtime_flags.py).
    steps_per_loop: int = 100
    # Evaluation.
    eval_every_steps: int = 0
    num_eval_steps: int = 100

    def validate(self) -> None:
        """Raises UserError (one line naming the flag) for values no run can use; the files
        the options name are checked when the run opens them (app.py)."""
        if self.num_train_steps <= 0:
            raise UserError(f"--num_train_steps={self.num_train_steps} must be positive")
        try:
            self.objective_config().validate(self.model_config(vocab_size=1))
        except ValueError as e:
            raise UserError(f"model flags: {e}") from None

    def _overrides(self) -> dict:
        return {name: getattr(self, name) for name in MODEL_OVERRIDES
                if getattr(self, name) is not None}

    def model_config(self, vocab_size: int) -> config_lib.ModelConfig:
        """The architecture: the preset with the overrides; ValueError when inconsistent."""
        model = config_lib.model_preset(self.model_size, vocab_size=vocab_size,
                                        **self._overrides())
        model.validate()
        return model

    def objective_config(self) -> config_lib.ObjectiveConfig:
        """The objective: the preset with the overrides (validate it against the model)."""
        return config_lib.objective_preset(self.model_size, **self._overrides())

