"""The settings of one fine-tuning run (run_finetuning.py's flags), typed and validated once.

Unset optimization settings (None) take the recipe's fine-tuning values for the model size in
the runner: lr 1e-4 (5e-5 for large), layer-wise lr decay 0.8 (0.9 for large), 3 epochs (10 for
RTE and STS-B); weight decay 0.01, warmup 10%, batch 32 are the defaults here, and an unset
sequence length becomes the task's own (128; 256 for chunking, 512 for question answering) in
`resolve`.
finetune/flags.py defines one flag per field, with these defaults.
"""

import dataclasses

from electra_tf.cli import UserError
from electra_tf.finetune import registry
from electra_tf.training.runtime_flags import RuntimeOptions

# The recipe's per-size fine-tuning values used when the setting is left unset.
RECIPE_LEARNING_RATE = {"large": 5e-5}
RECIPE_LAYERWISE_DECAY = {"large": 0.9}
DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_LAYERWISE_DECAY = 0.8


@dataclasses.dataclass(frozen=True)
class FinetuneOptions(RuntimeOptions):
    # Task and data.
    task: str | None = None
    data_dir: str | None = None
    tfds_data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    text_b_column: str | None = None
    label_column: str = "label"
    token_column: int = 0
    tag_column: int = -1
    # Model and tokenizer.
    vocab_file: str | None = None
    do_lower_case: bool = True
    init_checkpoint: str | None = None
    model_size: str = "small"
    config_file: str | None = None
    model_dir: str | None = None
    # Optimization.
    learning_rate: float | None = None
    layerwise_lr_decay: float | None = None
    weight_decay: float = 0.01
    num_train_epochs: float | None = None
    max_train_steps: int | None = None
    warmup_proportion: float = 0.1
    train_batch_size: int = 32
    eval_batch_size: int = 128
    max_seq_length: int | None = None
    # Runs.
    do_train: bool = True
    do_eval: bool = True
    do_predict: bool = False
    num_trials: int = 1
    seed: int = 1
    eval_every_epochs: int = 0
    # The training loop's machinery is RuntimeOptions (training/runtime_flags.py).
    keep_checkpoint_max: int = dataclasses.field(default=1, kw_only=True)
    log_every_steps: int = 50
    # Question answering.
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30

    def validate(self) -> None:
        """UserError naming the flag of the first inconsistent setting."""
        for name in ("task", "vocab_file", "model_dir"):
            if not getattr(self, name):
                raise UserError(f"--{name} is required")
        for name in ("train_batch_size", "eval_batch_size", "num_trials", "max_seq_length",
                     "n_best_size", "max_answer_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name}={value} must be at least 1")
        if not 0.0 <= self.warmup_proportion <= 1.0:
            raise UserError(f"--warmup_proportion={self.warmup_proportion} must be in [0, 1]")
        if self.layerwise_lr_decay is not None and not 0.0 < self.layerwise_lr_decay <= 1.0:
            raise UserError(f"--layerwise_lr_decay={self.layerwise_lr_decay} must be in (0, 1]")
        if not (self.do_train or self.do_eval or self.do_predict):
            raise UserError("nothing to do: set --do_train, --do_eval or --do_predict")


def resolve(options: FinetuneOptions) -> FinetuneOptions:
    """`options` with the task's own sequence length where max_seq_length is unset."""
    if options.max_seq_length is not None:
        return options
    length = registry.task_name(options.task).max_seq_length
    return dataclasses.replace(options, max_seq_length=length)


def build(**values) -> FinetuneOptions:
    """The validated options of a run from setting values (field names), lengths resolved."""
    options = FinetuneOptions(**values)
    options.validate()
    return resolve(options)
