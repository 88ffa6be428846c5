"""Fine-tunes a pre-trained ELECTRA discriminator on a downstream task (the recipe's GLUE, text
classification/regression, tagging and SQuAD fine-tuning; docs/RECIPE.md "Fine-tuning").

    python run_finetuning.py --flagfile=configs/finetune_small.flags --task=rte \
        --data_dir=glue_data --vocab_file=vocab.txt --init_checkpoint=pretrain_dir \
        --model_dir=rte_dir
"""

from absl import flags

from electra_tf import cli  # first: TensorFlow imported with its start-up notices filtered
from electra_tf.finetune import flags as finetune_flags
from electra_tf.finetune import registry, runner


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if flags.FLAGS.list_tasks:
        for name, description in registry.task_descriptions().items():
            print(f"{name:16s} {description}")
        return
    runner.run(finetune_flags.options_from_flags(flags.FLAGS))


if __name__ == "__main__":
    cli.run(main)
