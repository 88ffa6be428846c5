"""Entry point: ELECTRA generator + discriminator pre-training (the recipe's run_pretraining.py).

    python run_pretraining.py --flagfile=configs/small.flags \
        --train_files='data/train/pretrain_data.tfrecord-*' \
        --eval_files='data/eval/pretrain_data.tfrecord-*' \
        --vocab_file=data/vocab.txt --model_dir=models/small

See electra_tf/pretraining/flags.py (or --helpfull) for every flag.
"""

from absl import logging

from electra_tf import cli  # first: TensorFlow imported with its start-up notices filtered
from electra_tf.pretraining import app, flags


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    app.run(flags.options_from_flags())


if __name__ == "__main__":
    cli.run(main)
