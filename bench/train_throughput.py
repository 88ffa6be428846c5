"""Throughput of the ELECTRA pre-training step (issue 3, "Speed"): sequences/s, achieved GFLOP/s
and the fraction of this machine's measured dense-matmul peak.

    python bench/train_throughput.py [--model_size=small] [--batch_size=32] [--seq_length=128]
        [--steps=2] [--windows=3] [--warmup_steps=1] [--precisions=float32,mixed_bfloat16]
        [--jit=false,true]

1. Peak: a chain of large square tf.matmul products (float32, bfloat16), timed best-of-3; this is
   the ceiling the model's matmuls could reach here, not the vendor's figure. It is measured once
   before the settings (the header line) and again in each setting's process, before, between
   and after its timed windows: that second figure is the one each fraction uses, because on a
   shared host the available CPU drifts within minutes.
2. For each precision x jit setting, the training loop's own step (electra_tf.training.loop's
   Trainer over ElectraPretrainer with the recipe's optimizer: masking, generator, sampling,
   discriminator, backward, gradient clipping, AdamW update) on synthetic full-length batches:
   `--warmup_steps` steps absorb tracing and XLA compilation, then `--windows` windows of
   `--steps` steps, each one Trainer.run_steps call (what Trainer.train runs between two reports);
   the fastest window counts, as the fastest chain does for the peak (the same statistic for
   both, so the other processes on a shared host bias neither).
3. In the same process, between those windows, the step's matmuls alone: every product of the
   FLOP count below, with the step's shapes, precision and jit setting, and nothing else (the
   "matmuls" column, as a fraction of the same peak). It is the ceiling of that setting: where
   it is close to the step's own fraction, the rest of the step is not what holds it back; where
   it is far below the peak, the matrix kernels do not reach the peak at the model's shapes.
Each measurement runs in a fresh process with a time limit (`--setting_timeout`): XLA:CPU can take
many minutes to compile the bfloat16 step, and a setting that runs out of time is reported as such
instead of stalling the table. On a shared CPU, wall-clock rates follow the other processes' load,
so the table also gives the fraction of peak per second of this process's CPU time (spin-waiting
included), which shows the efficiency regardless of the load.

FLOPs are counted analytically from the matmuls only (softmax, LayerNorm, GELU, dropout and
sampling noise, gathers and the optimizer's elementwise work are not counted), per sequence of
length T:
  encoder layer (hidden H, FFN F):   8 T H^2 (Q, K, V, output) + 4 T^2 H (QK^T, AV) + 4 T H F
  embeddings_project (E != H):       2 T E H
  discriminator head:                2 T H^2 + 2 T H
  generator head at N = max_predictions_per_seq masked slots (generator hidden h, vocab V):
                                     2 N h E + 2 N E V
  training step = 3 x forward (the backward pass computes gradients w.r.t. inputs and weights,
  2 x forward), over both towers.
"""

import json
import multiprocessing
import os
import queue
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from electra_tf.cli import UserError, run  # noqa: E402
from electra_tf.config import PRESETS, model_preset, objective_preset  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_size", "small", f"Model preset: {', '.join(sorted(PRESETS))}.")
flags.DEFINE_integer("batch_size", 32, "Sequences per training step.")
flags.DEFINE_integer("seq_length", 128, "Sequence length.")
flags.DEFINE_integer("steps", 2, "Timed training steps per window (inside one tf.function).")
flags.DEFINE_integer("windows", 3, "Timed windows per setting; the fastest counts.")
flags.DEFINE_integer("warmup_steps", 1, "Untimed steps first (tracing, XLA compilation).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"],
                  "Keras mixed-precision policies to time: float32, mixed_bfloat16, "
                  "mixed_float16.")
flags.DEFINE_list("jit", ["false", "true"], "jit_compile settings to time.")
flags.DEFINE_integer("setting_timeout", 240, "Seconds allowed to each setting (process start, "
                     "model build, compilation, warmup and timed steps).")
flags.DEFINE_integer("peak_size", 0, "Side of the square matrices of the peak measurement "
                     "(0: 2048 on CPU, 8192 on GPU).")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: TF's default).")
flags.DEFINE_boolean("matmuls_alone", True, "Also time the step's matmuls alone in each "
                     "setting (the 'matmuls' column; one more compilation per setting).")
flags.DEFINE_string("output_json", "", "Also write the results here as JSON.")

PEAK_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# BERT-uncased ids of the special tokens the objective needs.
CLS_ID, SEP_ID, MASK_ID = 101, 102, 103


def forward_matmuls(config, objective, batch: int) -> list:
    """(batch dims, M, K, N) of every matmul in one forward pass over `batch` sequences: both
    towers, then the two heads (see the module docstring)."""
    seq, emb = objective.max_seq_length, config.embedding_size
    gen = config.generator()
    rows = batch * seq
    products = []
    for tower in (config, gen):
        hidden, heads = tower.hidden_size, tower.num_attention_heads
        width = hidden // heads
        if emb != hidden:
            products.append((1, rows, emb, hidden))
        for _ in range(tower.num_hidden_layers):
            products += [(1, rows, hidden, hidden)] * 3  # query, key, value
            products += [(batch * heads, seq, width, seq), (batch * heads, seq, seq, width)]
            products += [(1, rows, hidden, hidden), (1, rows, hidden, tower.intermediate_size),
                         (1, rows, tower.intermediate_size, hidden)]
    products += [(1, rows, config.hidden_size, config.hidden_size),
                 (1, rows, config.hidden_size, 1)]
    slots = batch * objective.max_predictions_per_seq
    products += [(1, slots, gen.hidden_size, emb), (1, slots, emb, config.vocab_size)]
    return products


def training_flops_per_sequence(config, objective) -> int:
    """Matmul FLOPs of one training step per sequence (see the module docstring)."""
    return 3 * sum(2 * b * m * k * n for b, m, k, n in forward_matmuls(config, objective, 1))


# ------------------------------------------------------------ measurements (child processes)
def import_tensorflow(threads: tuple):
    import tensorflow as tf

    intra, inter = threads
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    return tf


def timed(call, gflop: float):
    """Calls `call` once untimed (tracing, compilation), then returns a function that calls it
    again and returns (wall seconds, CPU seconds, gflop) of that call."""
    call()

    def run() -> tuple:
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        return time.perf_counter() - wall, time.process_time() - cpu, gflop

    return run


def matmul_chain(tf, dtype: str, size: int, chain: int = 8):
    """A function that runs `chain` dependent size^3 matmuls in one tf.function and returns
    (wall seconds, CPU seconds, GFLOP) of that run (see `timed`)."""
    a = tf.cast(tf.random.normal((size, size), stddev=size ** -0.5), dtype)
    b = tf.cast(tf.random.normal((size, size), stddev=size ** -0.5), dtype)

    @tf.function
    def products(a, b):
        for _ in range(chain):
            a = tf.matmul(a, b)
        return tf.reduce_sum(tf.cast(a, tf.float32))

    return timed(lambda: products(a, b).numpy(), 2 * size ** 3 * chain / 1e9)


def step_matmuls(tf, config, objective, batch: int, dtype: str, jit: bool,
                 chunk_bytes: int = 2 ** 30):
    """A function that runs the training step's matmuls alone (each product of `forward_matmuls`
    and its two gradients: the step's shapes and FLOPs, nothing else) and returns (wall seconds,
    CPU seconds, GFLOP).

    This is the ceiling of the step under the same precision and jit setting: the fraction of the
    peak it reaches is what the step would reach if softmax, LayerNorm, GELU, dropout, sampling
    and the optimizer cost nothing. Each product's result is kept (returned), so neither XLA nor
    Grappler can drop it; to bound memory, the products run in chunks of about `chunk_bytes` of
    results, one tf.function call each (timed as `timed` does)."""
    operands = {}

    def operand(b, rows, cols):
        shape = (rows, cols) if b == 1 else (b, rows, cols)
        if shape not in operands:
            operands[shape] = tf.cast(tf.random.normal(shape, stddev=cols ** -0.5), dtype)
        return operands[shape]

    # Each forward product A[M, K] x B[K, N] and its two gradients as TensorFlow computes them:
    # G[M, N] x B^T for the input, A^T x G for the weight.
    products = [(operand(b, m, k), operand(b, k, n), operand(b, m, n))
                for b, m, k, n in forward_matmuls(config, objective, batch)]
    chunks, chunk, size = [], [], 0
    itemsize = tf.as_dtype(dtype).size
    for a, b, g in products:
        chunk.append((a, b, g))
        # The results have the shapes of G, A and B.
        size += sum(x.shape.num_elements() for x in (a, b, g)) * itemsize
        if size >= chunk_bytes:
            chunks.append(chunk)
            chunk, size = [], 0
    chunks += [chunk] if chunk else []

    @tf.function(jit_compile=jit)
    def run_chunk(triples):
        return [result for a, b, g in triples
                for result in (tf.matmul(a, b), tf.matmul(g, b, transpose_b=True),
                               tf.matmul(a, g, transpose_a=True))]

    def run_all():
        for triples in chunks:
            # One element fetched: waits for the chunk without copying its results.
            tf.reshape(run_chunk(triples)[-1], [-1])[0].numpy()

    return timed(run_all, training_flops_per_sequence(config, objective) * batch / 1e9)


def peak_size(tf, size: int) -> int:
    return size or (8192 if tf.config.list_physical_devices("GPU") else 2048)


def fastest(runs: list) -> tuple:
    """(shortest wall, shortest CPU seconds) over runs given as (wall, cpu, ...) tuples."""
    return min(run[0] for run in runs), min(run[1] for run in runs)


def best_rates(runs: list) -> tuple:
    """(GFLOP/s, GFLOP per CPU-second) of the fastest of (wall, cpu, gflop) runs."""
    wall, cpu = fastest(runs)
    return runs[0][2] / wall, runs[0][2] / cpu


def measure_peaks(report, dtypes: list, size: int, threads: tuple) -> dict:
    """{dtype: (GFLOP/s, GFLOP per CPU-second)}: the fastest of 3 matmul chains."""
    tf = import_tensorflow(threads)
    gpus = tf.config.list_physical_devices("GPU")
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else f"CPU x{os.cpu_count()}")
    size = peak_size(tf, size)
    report("phase", "peak")
    peaks = {}
    for dtype in dtypes:
        run = matmul_chain(tf, dtype, size)
        peaks[dtype] = best_rates([run() for _ in range(3)])
    return {"device": device, "tensorflow": tf.__version__, "peak_size": size, "peaks": peaks}


def synthetic_input_fn(tf, config, seq_length: int, pool: int = 8):
    """Full-length random sequences ([CLS] ... [SEP]), as the Trainer's train_input_fn."""

    def input_fn(global_batch_size, input_context, start_batch):
        del start_batch  # a pool of random rows has no position to resume (benches never do)
        rows = global_batch_size // input_context.num_input_pipelines
        count = pool * rows
        ids = tf.random.stateless_uniform((count, seq_length), seed=(1, 2),
                                          minval=999, maxval=config.vocab_size, dtype=tf.int32)
        ids = tf.concat([tf.fill((count, 1), CLS_ID), ids[:, 1:-1], tf.fill((count, 1), SEP_ID)],
                        axis=1)
        features = {
            "input_ids": ids,
            "input_mask": tf.ones_like(ids),
            "segment_ids": tf.zeros_like(ids),
            "example_index": tf.range(count, dtype=tf.int64),
        }
        return (tf.data.Dataset.from_tensor_slices(features)
                .batch(rows, drop_remainder=True).cache().repeat())

    return input_fn


def time_setting(report, config_values: dict, objective_values: dict, precision: str, jit: bool,
                 batch_size: int,
                 steps: int, windows: int, warmup_steps: int, threads: tuple,
                 size: int, matmuls_alone: bool) -> dict:
    tf = import_tensorflow(threads)
    import keras

    from electra_tf.config import ModelConfig, ObjectiveConfig
    from electra_tf.pretraining.objective import ElectraPretrainer
    from electra_tf.training.distribute import create_strategy
    from electra_tf.training.loop import Trainer
    from electra_tf.training.optimization import create_optimizer

    config = ModelConfig.from_dict(config_values)
    objective = ObjectiveConfig(**objective_values)
    report("phase", "model build")
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    with tempfile.TemporaryDirectory() as model_dir:
        trainer = Trainer(
            strategy=create_strategy("one_device"),
            model_fn=lambda: ElectraPretrainer(config, objective, seed=0, mask_id=MASK_ID,
                                               cls_id=CLS_ID, sep_id=SEP_ID),
            optimizer_fn=lambda: create_optimizer("adamw", 5e-4, 1_000_000, 10_000),
            train_input_fn=synthetic_input_fn(tf, config, objective.max_seq_length),
            model_dir=model_dir, train_batch_size=batch_size, jit_compile=jit,
            mixed_precision=precision, steps_per_loop=steps, save_checkpoints_steps=0,
            log_fn=lambda line: None)

        def run_steps(count: int) -> tuple:
            # What Trainer.train runs between two reports: one compiled multi-step call.
            wall, cpu = time.perf_counter(), time.process_time()
            trainer.run_steps(count)
            return time.perf_counter() - wall, time.process_time() - cpu

        report("phase", "tracing/compilation and warmup")
        warmup, _ = run_steps(warmup_steps)
        # The peak is measured between the windows, in this process: on a shared host the
        # available CPU drifts within minutes, and a peak taken earlier would not match.
        peak_run = matmul_chain(tf, PEAK_DTYPE[precision], peak_size(tf, size))
        matmuls_run = None
        if matmuls_alone:
            report("phase", "matmuls alone: compilation")
            matmuls_run = step_matmuls(tf, config, objective, batch_size, PEAK_DTYPE[precision],
                                       jit)
        report("phase", "timed steps")
        timings, peak_runs, matmuls_runs = [], [], []
        for _ in range(windows):
            peak_runs.append(peak_run())
            timings.append(run_steps(steps))
            if matmuls_run:
                matmuls_runs.append(matmuls_run())
        peak_runs.append(peak_run())
        elapsed, cpu = fastest(timings)
    sequences = batch_size * steps
    peak_wall, peak_cpu = best_rates(peak_runs)
    return {"warmup_s": warmup, "step_ms": 1000 * elapsed / steps,
            "sequences_per_s": sequences / elapsed, "sequences_per_cpu_s": sequences / cpu,
            "peak_gflops": peak_wall, "peak_gflops_per_cpu_s": peak_cpu,
            "matmuls_only_gflops": best_rates(matmuls_runs)[0] if matmuls_runs else None}


def _child(messages, function, kwargs):
    def report(kind, value):
        messages.put((kind, value))

    try:
        report("done", function(report, **kwargs))
    except Exception as error:  # reported as the setting's status, the table goes on
        first_line = (str(error).strip().splitlines() or [""])[0]
        report("error", f"{type(error).__name__}: {first_line}"[:200])


def in_child_process(function, timeout: float, **kwargs) -> tuple:
    """Runs function(report, **kwargs) in a fresh process: ("done", result), ("error", message)
    or ("timeout", the phase it was in)."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    process = context.Process(target=_child, args=(messages, function, kwargs), daemon=True)
    process.start()
    deadline = time.monotonic() + timeout
    phase = "process start"
    try:
        while time.monotonic() < deadline:
            alive = process.is_alive()
            try:
                kind, value = messages.get(timeout=1.0)
            except queue.Empty:
                if not alive:  # dead before the wait began, and nothing was left queued
                    return "error", f"the process died (exit code {process.exitcode}) in {phase}"
                continue
            if kind != "phase":
                return kind, value
            phase = value
        return "timeout", phase
    finally:
        process.kill()
        process.join()


# --------------------------------------------------------------------------------- table
def parse_jit(values) -> list:
    settings = []
    for value in values:
        if value.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise UserError(f"--jit: {value!r} is not true or false")
        settings.append(value.lower() in ("true", "1", "on"))
    return settings


def main(argv):
    del argv
    for name in FLAGS.precisions:
        if name not in PEAK_DTYPE:
            raise UserError(f"--precisions: {name!r} is not one of {', '.join(PEAK_DTYPE)}")
    jit_settings = parse_jit(FLAGS.jit)
    if min(FLAGS.batch_size, FLAGS.steps, FLAGS.windows, FLAGS.warmup_steps,
           FLAGS.setting_timeout) < 1:
        raise UserError("--batch_size, --steps, --windows, --warmup_steps and --setting_timeout "
                        "must be >= 1")
    if FLAGS.model_size not in PRESETS:
        raise UserError(f"--model_size={FLAGS.model_size!r} is not one of "
                        f"{', '.join(sorted(PRESETS))}")
    config = model_preset(FLAGS.model_size)
    objective = objective_preset(FLAGS.model_size, max_seq_length=FLAGS.seq_length)
    try:
        config.validate()
        objective.validate(config)
    except ValueError as error:
        raise UserError(f"--seq_length={FLAGS.seq_length}: {error}") from None
    threads = (FLAGS.intra_op_threads, FLAGS.inter_op_threads)
    flops = training_flops_per_sequence(config, objective)

    def say(line: str) -> None:
        print(line, flush=True)

    dtypes = sorted({PEAK_DTYPE[p] for p in FLAGS.precisions})
    kind, machine = in_child_process(measure_peaks, max(120, FLAGS.setting_timeout),
                                     dtypes=dtypes, size=FLAGS.peak_size, threads=threads)
    if kind != "done":
        raise UserError(f"the matmul peak measurement failed ({kind}: {machine})")
    say(f"device: {machine['device']}; TensorFlow {machine['tensorflow']}; "
        f"load average {os.getloadavg()[0]:.1f}; threads intra={threads[0] or 'default'} "
        f"inter={threads[1] or 'default'}")
    peaks = machine["peaks"]
    for dtype, (wall, cpu) in peaks.items():
        say(f"matmul peak {dtype} ({machine['peak_size']}^3), before the settings: "
            f"{wall:,.0f} GFLOP/s ({cpu:,.0f} per CPU-second)")
    say(f"ELECTRA-{FLAGS.model_size}, seq {FLAGS.seq_length}, batch {FLAGS.batch_size}: "
        f"{flops / 1e9:.2f} GFLOP per sequence per training step (matmuls, 3 x forward)")
    say("peak: the same matmul chain between the timed windows, in the setting's process")
    say("matmuls: the step's own matmuls alone (same shapes, precision and jit), of that peak")
    say(f"{'precision':<15} {'jit':<5} {'seq/s':>9} {'step ms':>9} {'GFLOP/s':>9} "
        f"{'peak':>7} {'of peak':>8} {'(cpu)':>6} {'matmuls':>8} {'warmup s':>9} {'load':>5}")
    rows = []
    for precision in FLAGS.precisions:
        for jit in jit_settings:
            kind, result = in_child_process(
                time_setting, FLAGS.setting_timeout, config_values=config.to_dict(),
                objective_values=objective.to_dict(),
                precision=precision, jit=jit, batch_size=FLAGS.batch_size, steps=FLAGS.steps,
                windows=FLAGS.windows, warmup_steps=FLAGS.warmup_steps, threads=threads,
                size=machine["peak_size"], matmuls_alone=FLAGS.matmuls_alone)
            row = {"precision": precision, "jit": jit, "load": os.getloadavg()[0]}
            label = f"{precision:<15} {str(jit).lower():<5}"
            if kind != "done":
                row["status"] = (f"timed out after {FLAGS.setting_timeout}s in {result}"
                                 if kind == "timeout" else result)
                say(f"{label} {row['status']}")
            else:
                achieved = result["sequences_per_s"] * flops / 1e9
                row.update(result, status="ok", gflops=achieved,
                           fraction_of_peak=achieved / result["peak_gflops"],
                           cpu_fraction_of_peak=result["sequences_per_cpu_s"] * flops / 1e9
                           / result["peak_gflops_per_cpu_s"],
                           matmuls_only_fraction_of_peak=(
                               result["matmuls_only_gflops"] / result["peak_gflops"]
                               if result["matmuls_only_gflops"] else None))
                matmuls = row["matmuls_only_fraction_of_peak"]
                say(f"{label} {row['sequences_per_s']:>9.1f} {row['step_ms']:>9.0f} "
                    f"{achieved:>9,.0f} {result['peak_gflops']:>7,.0f} "
                    f"{row['fraction_of_peak']:>8.0%} "
                    f"{row['cpu_fraction_of_peak']:>6.0%} "
                    f"{format(matmuls, '.0%') if matmuls else '-':>8} {row['warmup_s']:>9.1f} "
                    f"{row['load']:>5.1f}")
            rows.append(row)
    if FLAGS.output_json:
        report = dict(machine, model_size=FLAGS.model_size, batch_size=FLAGS.batch_size,
                      seq_length=FLAGS.seq_length, steps=FLAGS.steps, windows=FLAGS.windows,
                      flops_per_sequence=flops, threads=threads, results=rows)
        temporary = FLAGS.output_json + ".tmp"
        with open(temporary, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(temporary, FLAGS.output_json)
    return 0


if __name__ == "__main__":
    run(main)
