"""Build ELECTRA pre-training TFRecords from raw text (docs/RECIPE.md "Data preparation").

Example (the demo):
  python build_pretraining_dataset.py \\
      --corpus_files=.cache/demo_data/wiki/summaries_en-us.txt \\
      --vocab_file=.cache/demo_data/vocab/vocab.txt --output_dir=demo_out/data \\
      --eval_fraction=0.05

The work is done by data_prep/build.py; this script only defines the flags.
"""

from absl import flags

from data_prep import build
from electra_tf import cli

FLAGS = flags.FLAGS

flags.DEFINE_string("corpus_dir", None,
                    "Directory of UTF-8 text files (its regular, non-hidden files, not "
                    "recursive, in sorted order). One sentence per line; see "
                    "--blanks_separate_docs.")
flags.DEFINE_list("corpus_files", [],
                  "Comma-separated globs of UTF-8 text files, read in the given order (each "
                  "glob's matches sorted). Each glob must match at least one file.")
flags.DEFINE_string("tfds_name", None,
                    "A TensorFlow Datasets text corpus (e.g. 'wikipedia/20230601.en') instead "
                    "of files; each example's text is one document.")
flags.DEFINE_string("tfds_split", "train", "The TFDS split to read, with --tfds_name.")
flags.DEFINE_string("tfds_text_key", "text", "The TFDS feature holding the text.")
flags.DEFINE_string("vocab_file", None,
                    "WordPiece vocabulary, one token per line, [PAD] at id 0 and [UNK], [CLS], "
                    "[SEP], [MASK] present (e.g. the BERT-uncased vocab.txt).")
flags.DEFINE_integer("learn_vocab_size", 0,
                     "Instead of --vocab_file: learn a WordPiece vocabulary of at most this "
                     "many tokens from the corpus (tensorflow-text's learner), written to "
                     "<output_dir>/vocab.txt.")
flags.DEFINE_string("output_dir", None,
                    "Where the shards and dataset_info.json go. Must be empty or missing, or "
                    "hold an interrupted run of this same command (which is then resumed).")
flags.DEFINE_integer("max_seq_length", 128,
                     "Tokens per example, [CLS] and [SEP]s included (at least 5).")
flags.DEFINE_integer("num_processes", 0,
                     "Processes building shards (this one included). 0 chooses from the corpus "
                     "size: one per 32 MiB, at most one per CPU and 8 (starting a process "
                     "costs seconds). The output does not depend on it.")
flags.DEFINE_integer("num_out_files", 0,
                     "Number of shards. 0 chooses from the corpus size: about one per 64 MiB, "
                     "at least min(16, size / 256 KiB), at most 1000.")
flags.DEFINE_float("eval_fraction", 0.0,
                   "Hold out this fraction of the corpus (its end; documents are never split) "
                   "as separate shards under <output_dir>/eval/. 0 holds out nothing.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the text (uncased vocabularies).")
flags.DEFINE_bool("strip_accents", True,
                  "Strip accents (NFD, drop combining marks) while lower-casing, as the BERT "
                  "uncased tokenizer does. Has no effect with --nodo_lower_case.")
flags.DEFINE_bool("blanks_separate_docs", True,
                  "A blank line ends a document. With --noblanks_separate_docs blank lines are "
                  "ignored and each file (or TFDS example) is one document.")
flags.DEFINE_integer("seed", 0,
                     "Seed of the packing randomness (each shard's generator is seeded from it "
                     "and the shard index).")
flags.DEFINE_bool("overwrite", False,
                  "Allow a non-empty --output_dir: replaces this builder's own files there "
                  "(shards, dataset_info.json, .build/) and leaves everything else.")


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    build.build(build.BuildOptions(
        output_dir=FLAGS.output_dir,
        corpus_dir=FLAGS.corpus_dir,
        corpus_files=tuple(FLAGS.corpus_files),
        tfds_name=FLAGS.tfds_name,
        tfds_split=FLAGS.tfds_split,
        tfds_text_key=FLAGS.tfds_text_key,
        vocab_file=FLAGS.vocab_file,
        learn_vocab_size=FLAGS.learn_vocab_size,
        max_seq_length=FLAGS.max_seq_length,
        num_processes=FLAGS.num_processes,
        num_out_files=FLAGS.num_out_files,
        eval_fraction=FLAGS.eval_fraction,
        do_lower_case=FLAGS.do_lower_case,
        strip_accents=FLAGS.strip_accents,
        blanks_separate_docs=FLAGS.blanks_separate_docs,
        seed=FLAGS.seed,
        overwrite=FLAGS.overwrite,
    ))


if __name__ == "__main__":
    cli.run(main)
