"""Distribution strategies for ELECTRA pre-training and fine-tuning (`--strategy`, `--tpu`),
and the one way input reaches the replicas.

The original recipe ran on one TPU (TPUEstimator) or one GPU; here the same training step runs
under any `tf.distribute` strategy: one device, several local devices (`mirrored`), several
machines (`multi_worker_mirrored`, configured by the TF_CONFIG environment variable), or a TPU
VM / pod slice (`tpu`).

Workers: TF_CONFIG may list "worker" tasks only, or a "chief" and N "worker" tasks (Vertex AI,
the Kubernetes training operators, TensorFlow's docs). The workers are numbered as TensorFlow
numbers them (the InputContext the strategy itself gives input functions: the chief is 0,
worker i is i + 1; worker i is i without a chief), and only the chief (TensorFlow's
`should_checkpoint`) writes model_dir. A collective that waits longer than
`--collective_timeout_seconds` for a peer fails, and a peer whose connection closes fails the
collectives at once, so a dead worker stops the others (WorkerLost) instead of hanging them.

Input: each worker (input pipeline p of P) builds its rows [p*b, (p+1)*b) of every global
batch as a plain tf.data pipeline; `distribute_input` cuts them into its local replicas'
consecutive shares and hands them to `strategy.distribute_datasets_from_function`, whose
iterator prefetches every replica's next batch onto its device (TPU infeed, GPU memory) while the
current step runs: the host never slices a batch in the step. Replica r of R holds rows
[r*B/R, (r+1)*B/R) of the global batch, whatever the number of workers. TensorFlow cannot save
such an iterator in a checkpoint; the training loop saves the number of batches it took
instead and rebuilds the stream from there (electra_tf/training/loop.py). Fine-tuning's
prediction over in-memory features takes the same path.
"""

import contextlib
import json
import os
import sys
import weakref

import tensorflow as tf

from electra_tf.cli import EXIT_USER_ERROR, UserError
from electra_tf.io import first_line

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")
# Seconds a multi-worker collective may wait for a peer before it fails (--collective_timeout_
# seconds): far above any pause between two steps of a healthy run (an evaluation, a checkpoint
# save, the first step's tracing), far below "forever".
DEFAULT_COLLECTIVE_TIMEOUT = 600.0


def create_strategy(name: str, tpu: str = "", cpu_devices: int = 0,
                    collective_timeout_seconds: float = DEFAULT_COLLECTIVE_TIMEOUT,
                    ) -> tf.distribute.Strategy:
    """Builds the strategy named by `--strategy`; bad names and missing hardware are UserErrors.

    Call it before any other TensorFlow op: multi_worker_mirrored configures collective ops and
    `cpu_devices` splits the CPU, and both are refused once TensorFlow has started.
    `tpu` is handed to TPUClusterResolver: "" or "local" on a TPU VM, a TPU name or a
    grpc://host:port address otherwise. `cpu_devices` > 1 splits the host CPU into that many
    logical devices (to run `mirrored` without accelerators, as the tests do).
    `collective_timeout_seconds` (multi_worker_mirrored; 0: none) bounds how long a collective
    waits for the other workers, so a dead worker makes the others fail instead of hang.
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
        return _multi_worker_strategy(collective_timeout_seconds)
    if name == "tpu":
        return _tpu_strategy(tpu)
    raise UserError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}")


class WorkerLost(UserError):
    """A multi-worker run lost a peer: it died, or was silent past the collective timeout."""


@contextlib.contextmanager
def exit_at_once_if_a_worker_is_lost():
    """Turns WorkerLost into its `error:` line and an immediate exit (status 2).

    An ordinary exit would hang: with a peer gone, TensorFlow's cluster runtime (gRPC server,
    coordination service) waits for it while shutting down. Checkpoints are complete files
    by then, so nothing of the run is lost by skipping that shutdown.
    """
    try:
        yield
    except WorkerLost as e:
        sys.stderr.write(f"error: {e}\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_USER_ERROR)


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
    """TF_CONFIG names a cluster of "chief" and/or "worker" tasks and this process's task in
    it (the layouts of TensorFlow's docs, Vertex AI and the Kubernetes training operators)."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        jobs = [job for job in ("chief", "worker") if cluster.get(job)]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        jobs, task_type, index = [], None, -1
    if not jobs or task_type not in jobs or not 0 <= index < len(cluster[task_type]):
        raise UserError("TF_CONFIG must be JSON with a cluster of \"chief\" and/or \"worker\" "
                        "addresses and this process's task (type and index) in it, for "
                        "--strategy=multi_worker_mirrored") from None


def _multi_worker_strategy(timeout_seconds: float) -> tf.distribute.Strategy:
    if "TF_CONFIG" in os.environ:
        _check_tf_config(os.environ["TF_CONFIG"])
    if timeout_seconds < 0:
        raise UserError(f"--collective_timeout_seconds={timeout_seconds} must be >= 0")
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout_seconds or None)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as e:  # "Collective ops must be configured at program startup"
        raise UserError(f"--strategy=multi_worker_mirrored: {first_line(e)}") from None


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


def input_context(strategy: tf.distribute.Strategy) -> tf.distribute.InputContext:
    """The InputContext of this process's input pipeline, as TensorFlow numbers the pipelines.

    Under multi_worker_mirrored it is the one the strategy itself hands an input function:
    one pipeline per chief or worker task, the chief 0 and worker i then i + 1 (worker i
    itself without a chief). Every other strategy runs in one process: one pipeline.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                          num_replicas_in_sync=strategy.num_replicas_in_sync)
    if strategy not in _INPUT_CONTEXTS:
        contexts = []

        def capture(context):
            contexts.append(context)
            return tf.data.Dataset.range(1)

        strategy.distribute_datasets_from_function(capture)
        _INPUT_CONTEXTS[strategy] = contexts[0]
    return _INPUT_CONTEXTS[strategy]


_INPUT_CONTEXTS = weakref.WeakKeyDictionary()


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """The number of input pipelines: the cluster's chief and worker tasks (1 without one)."""
    return input_context(strategy).num_input_pipelines


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This process's input pipeline id: the chief is 0, then the workers in task order."""
    return input_context(strategy).input_pipeline_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one process that writes checkpoints, summaries and results to model_dir:
    the "chief" task, or worker 0 of a cluster without one (TensorFlow's should_checkpoint)."""
    return bool(strategy.extended.should_checkpoint)


def distribute_input(strategy: tf.distribute.Strategy, input_fn, global_batch_size: int,
                     micro_batches: int = 1) -> tuple:
    """(the distributed dataset of `input_fn`'s stream, the element spec of one replica's share).

    `input_fn(global_batch_size, input_context)` returns this pipeline's rows of each global
    batch (electra_tf.data.pretraining_dataset does). Each worker batch is cut into its local
    replicas' consecutive rows, in replica order, which is the order in which the distributed
    iterator deals elements to the replicas. `micro_batches` > 1 stacks that many consecutive
    batches into one element [micro_batches, rows, ...] per replica (gradient accumulation).
    """
    local_replicas = strategy.num_replicas_in_sync // num_workers(strategy)
    specs = []

    def replica_dataset(context):
        dataset = input_fn(global_batch_size, context)
        if micro_batches > 1:
            dataset = dataset.batch(micro_batches, drop_remainder=True)
        if local_replicas > 1:
            dataset = dataset.map(
                lambda batch: tf.nest.map_structure(
                    lambda t: _replica_major(t, local_replicas, int(micro_batches > 1)), batch)
            ).unbatch()
        specs.append(dataset.element_spec)
        return dataset.prefetch(tf.data.AUTOTUNE)

    distributed = strategy.distribute_datasets_from_function(replica_dataset)
    return distributed, specs[0]


def _replica_major(tensor: tf.Tensor, replicas: int, batch_axis: int) -> tf.Tensor:
    """[..., rows, ...] (rows at `batch_axis`) -> [replicas, ..., rows / replicas, ...]: replica
    i's consecutive slice of the rows first."""
    shape = tensor.shape.as_list()
    split = shape[:batch_axis] + [replicas, shape[batch_axis] // replicas] + shape[batch_axis + 1:]
    tensor = tf.reshape(tensor, split)
    if batch_axis:
        perm = list(range(len(split)))
        perm[0], perm[batch_axis] = batch_axis, 0
        tensor = tf.transpose(tensor, perm)
    return tensor
