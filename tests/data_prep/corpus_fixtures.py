"""Small, deterministic corpora and vocabularies for the data-preparation tests.

The corpus looks like real prose to the tokenizer (capitals, punctuation, a few accented words,
documents of one to a dozen sentences) and the vocabulary covers it only partly, so WordPiece
has to split some words into "##" pieces and a few characters become [UNK].
"""

import random
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "the of and to in is was for on that with as by at from his her an which it be are "
    "were this has had not but also its their first one two new after who they been more "
    "city film music river team season village school language history war album station "
    "county state family species church party game series national university century "
    "album played born known located built released called became including during "
    "between under population district railway island north south east west small large "
    "early later several public German French Spanish café naïve Zürich résumé façade "
    "encyclopedia photosynthesis neighbourhood counterintuitive Straße "
).split()
_PUNCTUATION = [",", ";", ":", " -", " (", ")"]


def sentence(rng: random.Random, min_words: int = 3, max_words: int = 25) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(min_words, max_words))]
    for i in range(1, len(words) - 1):
        if rng.random() < 0.08:
            words[i] += rng.choice(_PUNCTUATION)
    words[0] = words[0].capitalize()
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), str(rng.randint(1, 2024)))
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?"])


def documents(n_docs: int, seed: int = 0, max_sentences: int = 12) -> list:
    rng = random.Random(seed)
    return [[sentence(rng) for _ in range(rng.randint(1, max_sentences))]
            for _ in range(n_docs)]


def corpus_text(docs: list) -> str:
    """One sentence per line, a blank line between documents."""
    return "\n\n".join("\n".join(doc) for doc in docs) + "\n"


def write_corpus(path: Path, n_docs: int, seed: int = 0) -> Path:
    path.write_text(corpus_text(documents(n_docs, seed)), encoding="utf-8")
    return path


def write_vocab(path: Path) -> Path:
    """Specials, the letters and digits (whole and "##"), most corpus words (lower-cased, accents
    stripped) and some suffixes; a few words are left out so WordPiece must split them."""
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?()-"))
    words = sorted({w.lower() for w in _WORDS if len(w) < 12 and w.isascii()})
    words = [w for i, w in enumerate(words) if i % 9 != 4]
    tokens = SPECIALS + chars + ["##" + c for c in chars if c.isalnum()] + words + [
        "##s", "##ed", "##ing", "##tion", "##al", "photo", "##syn", "##thesis"]
    seen = set()
    unique = [t for t in tokens if not (t in seen or seen.add(t))]
    path.write_text("\n".join(unique) + "\n", encoding="utf-8")
    return path
