"""Build ELECTRA pre-training TFRecords from raw text (docs/RECIPE.md "Data preparation").

Example (the demo):
  python build_pretraining_dataset.py \\
      --corpus_files=.cache/demo_data/wiki/summaries_en-us.txt \\
      --vocab_file=.cache/demo_data/vocab/vocab.txt --output_dir=demo_out/data \\
      --eval_fraction=0.05

The flags are defined in data_prep/flags.py (--helpfull lists them); the work is done by
data_prep/build.py. The same build on Apache Beam: python -m data_prep.beam_build.
"""

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
from data_prep import build
from data_prep import flags as build_flags


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    build.build(build_flags.options_from_flags())


if __name__ == "__main__":
    cli.run(main)
