"""Exports an ELECTRA checkpoint as a SavedModel for TF Serving (raw-text and `encode` signatures).

    python export_saved_model.py --checkpoint=pretrain_dir --vocab_file=vocab.txt \
        --export_dir=serving/electra [--head=generator] [--max_seq_length=128]

writes serving/electra/<version>/ (see docs/SERVING.md for serving it with TF Serving).
"""

from absl import flags

from electra_tf import cli  # first: TensorFlow imported with its start-up notices filtered
from electra_tf.export import saved_model

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None,
                    "Model directory (its latest checkpoint) or checkpoint prefix: pre-training, "
                    "fine-tuning (classification, regression, tagging, SQuAD), converter output "
                    "or an original TF1 ELECTRA checkpoint.")
flags.DEFINE_string("vocab_file", None,
                    "WordPiece vocabulary of the model (its size must equal the embedding "
                    "table's); shipped inside the SavedModel as an asset. A fine-tuned "
                    "model_dir: unset = the vocabulary it recorded (checked by sha256).")
flags.DEFINE_string("export_dir", None,
                    "TF Serving model_base_path: the SavedModel goes to export_dir/<version>/.")
flags.DEFINE_integer("max_seq_length", None,
                     "Packed length of the raw-text signature (default: the fine-tuning "
                     "length of a fine-tuned model, else the pre-training length recorded "
                     "beside the checkpoint, else 128).")
flags.DEFINE_enum("head", "auto", saved_model.HEADS,
                  "Outputs of serving_default: discriminator (replaced probability per token), "
                  "generator (fill [MASK]), classifier / regressor / tagger / qa (fine-tuned "
                  "models; qa takes question + context). auto: the fine-tuned task's head, else "
                  "discriminator.")
flags.DEFINE_integer("top_k", 5, "With --head=generator: candidates returned per [MASK].")
flags.DEFINE_bool("do_lower_case", None,
                  "Lower-case before WordPiece (False for cased vocabularies). Unset: what a "
                  "fine-tuned model recorded, else True; contradicting the record is an error.")
flags.DEFINE_bool("strip_accents", None,
                  "Strip accents before WordPiece. Unset: what a fine-tuned model recorded, "
                  "else as --do_lower_case; contradicting the record is an error.")
flags.DEFINE_integer("version", None,
                     "Version directory to write (default: one more than the highest existing).")
flags.DEFINE_bool("overwrite", False, "Replace export_dir/<version> if it already exists.")


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in ("checkpoint", "export_dir"):
        if not FLAGS[name].value:
            raise cli.UserError(f"--{name} is required")
    path = saved_model.export_saved_model(
        FLAGS.checkpoint, FLAGS.vocab_file, FLAGS.export_dir, head=FLAGS.head,
        max_seq_length=FLAGS.max_seq_length, top_k=FLAGS.top_k,
        do_lower_case=FLAGS.do_lower_case, strip_accents=FLAGS.strip_accents,
        version=FLAGS.version, overwrite=FLAGS.overwrite)
    print(f"exported {path}")


if __name__ == "__main__":
    cli.run(main)
