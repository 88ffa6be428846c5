"""The pre-training data builder on Apache Beam: the same shards, built by any Beam runner.

    python -m data_prep.beam_build --corpus_files='gs://bucket/text/*.txt' \\
        --vocab_file=gs://bucket/vocab.txt --output_dir=gs://bucket/electra/data \\
        --beam_pipeline_options="--runner=DataflowRunner --project=P --region=R \\
            --temp_location=gs://bucket/tmp --requirements_file=requirements.txt"

Every flag of build_pretraining_dataset.py applies (--num_processes is the local builder's
and is ignored here); --beam_pipeline_options goes to Beam as it is. Without it the pipeline runs
on Beam's portable FnApiRunner in this process. The pipeline is data_prep/beam_pipeline.py.
"""

import shlex

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
from absl import flags

from data_prep import beam_pipeline
from data_prep import flags as build_flags

flags.DEFINE_string("beam_pipeline_options", "",
                    "Beam pipeline options, as on a command line (e.g. '--runner=DataflowRunner "
                    "--project=P --region=R --temp_location=gs://B/tmp'). Empty: the local "
                    "FnApiRunner.")


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        pipeline_args = shlex.split(flags.FLAGS.beam_pipeline_options)
    except ValueError as e:
        raise cli.UserError(f"--beam_pipeline_options: {e}") from None
    beam_pipeline.beam_build(build_flags.options_from_flags(), pipeline_args)


if __name__ == "__main__":
    cli.run(main)
