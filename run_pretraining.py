"""Entry point: ELECTRA generator + discriminator pre-training (the recipe's run_pretraining.py).

    python run_pretraining.py --flagfile=configs/small.flags \
        --train_files='data/train/pretrain_data.tfrecord-*' \
        --eval_files='data/eval/pretrain_data.tfrecord-*' \
        --vocab_file=data/vocab.txt --model_dir=models/small

See electra_tf/training/flags.py (or --helpfull) for every flag.
"""

from absl import logging

from electra_tf import cli
from electra_tf.training import flags  # noqa: F401 (defines the flags)


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from electra_tf.training import pretrain
    pretrain.run(flags.FLAGS)


if __name__ == "__main__":
    cli.run(main)
