"""Tokenize stdin into WordPieces, one output line per input line (docs/RECIPE.md "Data
preparation").

    python -m data_prep.tokenize --vocab_file=vocab.txt < corpus.txt > pieces.txt

The same tokenizer as the pre-training data builder (electra_tf.tokenization.Tokenizer, the
reference BERT/ELECTRA tokenization in tensorflow-text), like sentencepiece's spm_encode: each
input line (ended by "\\n"; any other line-break character is whitespace inside the line) gives
one line of space-separated WordPieces, or of their ids with --ids. Input is read and written in
batches, and a long line is tokenized in parts cut at spaces (the same WordPieces), so memory
stays bounded whatever the input size; bytes that are not UTF-8 are dropped, as the reference's
decoding does.
"""

import sys

from absl import flags

from electra_tf import cli  # first: TensorFlow imported with its start-up notices filtered

flags.DEFINE_string("vocab_file", None, "WordPiece vocabulary, one token per line ([PAD] first).")
flags.DEFINE_boolean("ids", False, "Print vocabulary ids instead of WordPiece strings.")
flags.DEFINE_boolean("do_lower_case", True, "Lower-case the text (uncased vocabularies).")
flags.DEFINE_boolean("strip_accents", True,
                     "While lower-casing, also strip accents (NFD, drop Mn), like the reference.")
flags.DEFINE_integer("batch_lines", 4096, "Lines tokenized per TensorFlow call.")
flags.DEFINE_integer("batch_bytes", 8 << 20, "A batch also ends once its lines hold this many "
                     "bytes, which bounds memory on long lines.")
FLAGS = flags.FLAGS


def batches(stream, max_lines: int, max_bytes: int, split_line):
    """(parts, ends): raw input lines (bytes, without their line end), long ones cut into parts
    by `split_line(line, max_bytes)`, and for each part whether it ends its line. A batch holds
    at most max_lines parts and about max_bytes bytes."""
    parts, ends, size = [], [], 0
    for line in stream:
        pieces = split_line(line.rstrip(b"\n"), max_bytes)
        for i, piece in enumerate(pieces):
            parts.append(piece)
            ends.append(i == len(pieces) - 1)
            size += len(piece)
            if len(parts) >= max_lines or size >= max_bytes:
                yield parts, ends
                parts, ends, size = [], [], 0
    if parts:
        yield parts, ends


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])} (input is read from "
                            "stdin)")
    if not FLAGS.vocab_file:
        raise cli.UserError("--vocab_file is required")
    if FLAGS.batch_lines < 1 or FLAGS.batch_bytes < 1:
        raise cli.UserError("--batch_lines and --batch_bytes must be positive")
    # Imported here so that --help and flag errors do not wait for TensorFlow.
    from electra_tf.tokenization import Tokenizer, split_at_spaces

    tokenizer = Tokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
                          strip_accents=FLAGS.strip_accents)
    show = str if FLAGS.ids else tokenizer.vocab.__getitem__
    out = sys.stdout.buffer
    line_started = False  # whether the current output line has pieces already
    for parts, ends in batches(sys.stdin.buffer, FLAGS.batch_lines, FLAGS.batch_bytes,
                               split_at_spaces):
        text = []
        for row, end in zip(tokenizer.ids(parts), ends):
            if row:
                text.append((" " if line_started else "") + " ".join(map(show, row)))
                line_started = True
            if end:
                text.append("\n")
                line_started = False
        out.write("".join(text).encode("utf-8"))
    out.flush()


if __name__ == "__main__":
    cli.run(main)
