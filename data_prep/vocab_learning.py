"""Learn a WordPiece vocabulary from the corpus (--learn_vocab_size), for the recipe's tokenizer.

docs/RECIPE.md "Data preparation" uses the fixed BERT-uncased vocabulary; this option lets a
corpus in another language or domain get its own. The learner is tensorflow-text's WordPiece
vocabulary learner (`wordpiece_tokenizer_learner_lib.learn`, the engine behind
`bert_vocab_from_dataset`).
It is given word counts made by the project's own Tokenizer.basic_tokenize, i.e. after exactly the
cleaning, lower-casing, accent stripping and punctuation splitting that tokenization will apply,
so the learned pieces match the words the tokenizer will look up (tensorflow-text's own
BertTokenizer pre-tokenization would case-fold with NFKC instead). Words over 200 characters are
not counted: the tokenizer turns them into [UNK] whole.

The vocabulary starts with the special tokens [PAD] (id 0), [UNK], [CLS], [SEP], [MASK].
"""

import collections
import os
import tempfile
from collections.abc import Iterator

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from electra_tf import cli, io, tokenization
from electra_tf.config import SPECIAL_TOKENS

BLOCK_LINES = 4096


def count_words(lines: Iterator[str | None], do_lower_case: bool, strip_accents: bool,
                progress: cli.Progress | None = None) -> collections.Counter:
    """Counts the tokenizer's words (before WordPiece) over lines; None entries are skipped."""
    with tempfile.TemporaryDirectory(prefix="electra_vocab_") as tmp:
        # The normalizer does not depend on the vocabulary; the Tokenizer just needs a valid one.
        specials = os.path.join(tmp, "specials.txt")
        with open(specials, "w", encoding="utf-8") as f:
            f.write("\n".join(SPECIAL_TOKENS) + "\n")
        tokenizer = tokenization.Tokenizer(specials, do_lower_case=do_lower_case,
                                           strip_accents=strip_accents)
    words_of = tf.function(tokenizer.basic_tokenize, autograph=False,
                           input_signature=[tf.TensorSpec([None], tf.string)])
    counts: collections.Counter = collections.Counter()
    block: list[str] = []
    n_lines = 0

    def flush():
        words = words_of(tf.constant(block, tf.string)).flat_values.numpy()
        counts.update(words.tolist())
        block.clear()

    for line in lines:
        if line is None:
            continue
        block.append(line)
        n_lines += 1
        if len(block) >= BLOCK_LINES:
            flush()
            if progress:
                progress.update(n_lines, words=sum(counts.values()))
    if block:
        flush()
    return counts


def learn_vocabulary(word_counts: collections.Counter, vocab_size: int) -> list[str]:
    words = [(word.decode("utf-8"), count) for word, count in word_counts.items()]
    words = [(w, c) for w, c in words if len(w) <= tokenization.MAX_CHARS_PER_WORD]
    if not words:
        raise cli.UserError("--learn_vocab_size: the corpus holds no words to learn from")
    vocab = learner.learn(words, vocab_size, list(SPECIAL_TOKENS))
    if list(vocab[:len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
        vocab = list(SPECIAL_TOKENS) + [t for t in vocab if t not in SPECIAL_TOKENS]
    return list(vocab)


def write_vocabulary(vocab: list[str], path: str) -> None:
    io.write_bytes(str(path), ("\n".join(vocab) + "\n").encode("utf-8"))
