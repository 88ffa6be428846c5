"""Distribution strategies for ELECTRA pre-training and fine-tuning (`--strategy`, `--tpu`),
and the one way input reaches the replicas.

The original recipe ran on one TPU (TPUEstimator) or one GPU; here the same training step runs
under any `tf.distribute` strategy: one device, several local devices (`mirrored`), several
machines (`multi_worker_mirrored`, configured by the TF_CONFIG environment variable), or a TPU
VM / pod slice (`tpu`).

Input: each worker (input pipeline p of P) reads its rows [p*b, (p+1)*b) of every global batch
as a plain tf.data pipeline, `worker_dataset`, whose iterator can be checkpointed (the
iterators of `strategy.distribute_datasets_from_function` cannot, and resuming a run needs its
input position). `split_batch` then hands each local replica its consecutive rows of the
worker's batch, so replica r of R holds rows [r*B/R, (r+1)*B/R) of the global batch: the same
rows whatever the number of workers.
"""

import json
import os

import tensorflow as tf

from electra_tf.cli import UserError
from electra_tf.io import first_line

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


def _cluster(strategy: tf.distribute.Strategy):
    """(cluster spec, task type, task id) of a multi-worker strategy, or None for one process."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec() if resolver is not None else None
    if spec is None or not any(job in spec.jobs for job in ("chief", "worker")):
        return None
    return spec, resolver.task_type, int(resolver.task_id or 0)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """The number of input pipelines: the cluster's chief and worker tasks (1 without one)."""
    cluster = _cluster(strategy)
    if cluster is None:
        return 1
    spec = cluster[0]
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's input pipeline id: the chief is 0, then the workers in task order."""
    cluster = _cluster(strategy)
    if cluster is None:
        return 0
    spec, task_type, task_id = cluster
    if task_type == "worker" and "chief" in spec.jobs:
        return spec.num_tasks("chief") + task_id
    return task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, summaries and results to model_dir."""
    return worker_index(strategy) == 0


def input_context(strategy: tf.distribute.Strategy) -> tf.distribute.InputContext:
    """The InputContext of this process's input pipeline."""
    return tf.distribute.InputContext(num_input_pipelines=num_workers(strategy),
                                      input_pipeline_id=worker_index(strategy),
                                      num_replicas_in_sync=strategy.num_replicas_in_sync)


def worker_dataset(strategy: tf.distribute.Strategy, input_fn, global_batch_size: int,
                   micro_batches: int = 1) -> tf.data.Dataset:
    """This worker's part of the global input stream, prefetched.

    `input_fn(global_batch_size, input_context)` returns a dataset of this pipeline's rows of
    each global batch (electra_tf.data.pretraining_dataset does). `micro_batches` > 1 stacks that
    many consecutive batches into one element [micro_batches, rows, ...] (gradient
    accumulation); `split_batch` then splits along axis 1.
    """
    dataset = input_fn(global_batch_size, input_context(strategy))
    if micro_batches > 1:
        dataset = dataset.batch(micro_batches, drop_remainder=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def split_batch(strategy: tf.distribute.Strategy, batch, batch_axis: int = 0):
    """A worker's batch (a structure of tensors) -> per-replica values for `strategy.run`.

    Local replica i of L gets the i-th of L equal consecutive slices along `batch_axis`, so
    global replica order is row order. Works inside a tf.function; with one replica the batch
    is returned as it is.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return batch
    local_replicas = replicas // num_workers(strategy)
    offset = worker_index(strategy) * local_replicas

    def rows(context):
        local = context.replica_id_in_sync_group - offset

        def take(tensor):
            size = tensor.shape[batch_axis] // local_replicas
            begin = [0] * tensor.shape.rank
            begin[batch_axis] = local * size
            shape = tensor.shape.as_list()
            shape[batch_axis] = size
            return tf.slice(tensor, begin, shape)

        return tf.nest.map_structure(take, batch)

    return strategy.experimental_distribute_values_from_function(rows)
