"""The flags and options of the training loop's machinery, shared by pre-training and fine-tuning.

Both entry scripts drive the same `loop.Trainer`, so devices, precision, XLA and checkpoint
flags mean the same in both: `RuntimeOptions` holds them (each run's options class derives from
it) and `define` declares their flags once per entry script, with the defaults of the options.
"""

import dataclasses

from absl import flags

from electra_tf.training import distribute
from electra_tf.training.distribute import STRATEGIES

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """Where and how the Trainer runs (the fields of `define`'s flags)."""

    strategy: str = "one_device"
    tpu: str = ""
    cpu_devices: int = 0
    mixed_precision: str = "float32"
    jit_compile: bool = False
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    collective_timeout_seconds: float = distribute.DEFAULT_COLLECTIVE_TIMEOUT


def define(defaults: RuntimeOptions, keep_checkpoint_help: str) -> None:
    flags.DEFINE_enum("strategy", defaults.strategy, list(STRATEGIES), "tf.distribute strategy: "
                      "multi_worker_mirrored reads TF_CONFIG; tpu uses --tpu.")
    flags.DEFINE_string("tpu", defaults.tpu, "TPU for --strategy=tpu: empty or 'local' on a TPU "
                        "VM, else the TPU name or grpc:// address.")
    flags.DEFINE_integer("cpu_devices", defaults.cpu_devices, "Split the CPU into this many "
                         "logical devices (to try --strategy=mirrored without GPUs).")
    flags.DEFINE_enum("mixed_precision", defaults.mixed_precision, list(PRECISIONS),
                      "Keras dtype policy (losses are computed in float32); mixed_float16 adds "
                      "dynamic loss scaling.")
    flags.DEFINE_boolean("jit_compile", defaults.jit_compile,
                         "Compile the training step with XLA.")
    flags.DEFINE_integer("save_checkpoints_steps", defaults.save_checkpoints_steps,
                         "Save a checkpoint every this many steps (and at the end, and on "
                         "SIGTERM).")
    flags.DEFINE_integer("keep_checkpoint_max", defaults.keep_checkpoint_max,
                         keep_checkpoint_help)
    flags.DEFINE_float("collective_timeout_seconds", defaults.collective_timeout_seconds,
                       "--strategy=multi_worker_mirrored: a worker whose peer stopped answering "
                       "(died, or lost the network) for this long stops with an error instead "
                       "of waiting forever; the last checkpoint stays, and restarting every "
                       "worker resumes from it. Must exceed the longest pause between two steps "
                       "(evaluation, a checkpoint save). 0: wait forever.")
