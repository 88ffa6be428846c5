"""Distribution strategies for ELECTRA pre-training and fine-tuning (`--strategy`, `--tpu`).

The original recipe ran on one TPU (TPUEstimator) or one GPU; here the same training step runs
under any `tf.distribute` strategy: one device, several local devices (`mirrored`), several
machines (`multi_worker_mirrored`, configured by the TF_CONFIG environment variable), or a TPU
VM / pod slice (`tpu`).
"""

import json
import os

import tensorflow as tf

from electra_tf.cli import UserError
from electra_tf.data import first_line

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def create_strategy(name: str, tpu: str = "", cpu_devices: int = 0) -> tf.distribute.Strategy:
    """Builds the strategy named by `--strategy`; bad names and missing hardware are UserErrors.

    `tpu` is handed to TPUClusterResolver: "" or "local" on a TPU VM, a TPU name or a
    grpc://host:port address otherwise. `cpu_devices` > 1 splits the host CPU into that many
    logical devices (to run `mirrored` without accelerators, as the tests do); it must be applied
    before TensorFlow initializes its devices.
    """
    if cpu_devices > 1:
        split_cpu(cpu_devices)
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        cpus = tf.config.list_logical_devices("CPU")
        # Without GPUs, mirror over the logical CPU devices (tests create two of them).
        devices = [d.name for d in (gpus or cpus)]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" in os.environ:
            _check_tf_config(os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(tpu)
    raise UserError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}")


def split_cpu(count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != count:
            raise UserError(f"--cpu_devices={count}: TensorFlow's devices were already "
                            "initialized") from None


def _check_tf_config(text: str) -> None:
    try:
        config = json.loads(text)
        config["cluster"]["worker"]
        config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise UserError("TF_CONFIG must be JSON with cluster.worker and task.index for "
                        "--strategy=multi_worker_mirrored") from None


def _tpu_strategy(tpu: str) -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
        if tpu not in ("", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise UserError(f"--strategy=tpu: no TPU found (--tpu={tpu!r}): "
                        f"{first_line(e)[:160]}") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and results to model_dir."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0)


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's input pipeline id (0 except for non-chief multi-worker processes)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver is not None:
        return int(resolver.task_id or 0)
    return 0


def num_workers(strategy: tf.distribute.Strategy) -> int:
    return int(getattr(strategy.extended, "_num_workers", 1) or 1)
