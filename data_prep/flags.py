"""The flags of the pre-training data builder (build_pretraining_dataset.py and, with
--beam_pipeline_options, data_prep/beam_build.py), and the BuildOptions they give.

Importing this module defines the flags; `options_from_flags` reads them once, in the entry
script, so nothing below it reads absl flags.
"""

from absl import flags

from data_prep.build import BuildOptions

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


def options_from_flags(values=FLAGS) -> BuildOptions:
    """The build's options from the parsed flags."""
    return BuildOptions(
        output_dir=values.output_dir,
        corpus_dir=values.corpus_dir,
        corpus_files=tuple(values.corpus_files),
        tfds_name=values.tfds_name,
        tfds_split=values.tfds_split,
        tfds_text_key=values.tfds_text_key,
        vocab_file=values.vocab_file,
        learn_vocab_size=values.learn_vocab_size,
        max_seq_length=values.max_seq_length,
        num_processes=values.num_processes,
        num_out_files=values.num_out_files,
        eval_fraction=values.eval_fraction,
        do_lower_case=values.do_lower_case,
        strip_accents=values.strip_accents,
        blanks_separate_docs=values.blanks_separate_docs,
        seed=values.seed,
        overwrite=values.overwrite,
    )
