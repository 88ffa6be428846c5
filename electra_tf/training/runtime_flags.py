"""The flags of the training loop's machinery, shared by pre-training and fine-tuning.

Both entry scripts drive the same `loop.Trainer`, so devices, precision, XLA and checkpoint
flags mean the same in both; each flags module calls `define` once with its own defaults.
"""

from absl import flags

from electra_tf.training.distribute import STRATEGIES


def define(keep_checkpoint_max: int, keep_checkpoint_help: str) -> None:
    flags.DEFINE_enum("strategy", "one_device", list(STRATEGIES), "tf.distribute strategy: "
                      "multi_worker_mirrored reads TF_CONFIG; tpu uses --tpu.")
    flags.DEFINE_string("tpu", "", "TPU for --strategy=tpu: empty or 'local' on a TPU VM, else "
                        "the TPU name or grpc:// address.")
    flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (to "
                         "try --strategy=mirrored without GPUs).")
    flags.DEFINE_enum("mixed_precision", "float32",
                      ["float32", "mixed_bfloat16", "mixed_float16"],
                      "Keras dtype policy (losses are computed in float32); mixed_float16 adds "
                      "dynamic loss scaling.")
    flags.DEFINE_boolean("jit_compile", False, "Compile the training step with XLA.")
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Save a checkpoint every this many "
                         "steps (and at the end, and on SIGTERM).")
    flags.DEFINE_integer("keep_checkpoint_max", keep_checkpoint_max, keep_checkpoint_help)
