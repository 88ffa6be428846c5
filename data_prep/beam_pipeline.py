"""The shards of the pre-training data builder, built by an Apache Beam pipeline.

docs/RECIPE.md "Data preparation", for corpora too big for one machine: the plan (which bytes
of the corpus each shard packs, seeded by its index), the checks of the output directory, the
vocabulary and the final dataset_info.json are the local builder's own (data_prep/build.py);
only the shards are built by Beam workers, one shard per element, each with the local builder's
`build_shard`. So the same corpus, vocabulary, flags and seed give byte-identical shards on
any runner and any number of workers, and a re-run resumes the shards that are missing.
The command line is data_prep/beam_build.py.
"""

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_prep import build


class BuildShards(beam.DoFn):
    """Builds the shards whose indices arrive (as build.build_shard does them locally)."""

    def __init__(self, build_plan: build.BuildPlan):
        self._build_options = build_plan.options
        self._corpus = build_plan.corpus
        self._output_dir = build_plan.output_dir
        self._vocab_file = build_plan.vocab_file
        self._tasks = {task.index: task for task in build_plan.pending}

    def setup(self):
        tokenizer = build.make_tokenizer(self._vocab_file, self._build_options.do_lower_case,
                                         self._build_options.strip_accents)
        self._context = build.WorkerContext(
            self._corpus, tokenizer, self._output_dir, self._build_options.max_seq_length,
            self._build_options.seed, report=lambda *_: None)

    def process(self, index: int):
        build.build_shard(self._tasks[index], self._context)
        yield index


def run(build_plan: build.BuildPlan, pipeline_args: list, log=print) -> None:
    """Builds the plan's pending shards with a Beam pipeline (blocks until it is done)."""
    pending = build_plan.pending
    log(f"building {len(pending)} shards from {build.describe_source(build_plan.corpus)} "
        f"on Beam ({' '.join(pipeline_args) or 'FnApiRunner'}) ...")
    if not pending:
        return
    if not any(a.startswith("--default_sdk_harness_log_level") for a in pipeline_args):
        # The SDK workers log each channel they open at INFO, burying the progress lines.
        pipeline_args = [*pipeline_args, "--default_sdk_harness_log_level=WARNING"]
    options = PipelineOptions(pipeline_args)
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline
             | "shards" >> beam.Create([task.index for task in pending])
             # One shard per worker at a time, whatever the runner fuses.
             | "spread" >> beam.Reshuffle()
             | "build" >> beam.ParDo(BuildShards(build_plan)))


def beam_build(options: build.BuildOptions, pipeline_args: list, log=print) -> dict:
    """build.build with the shards built on Beam; returns the training split's dataset_info."""
    build_plan = build.plan(options, log)
    run(build_plan, pipeline_args, log)
    return build.finish(build_plan, log)
