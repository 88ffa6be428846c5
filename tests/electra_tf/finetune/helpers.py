"""Helpers of the fine-tuning tests: a tiny WordPiece vocabulary and model sizes, fine-tuning
options with the flags' defaults, and small data files in the real formats."""

import random

WORDS = ("the a movie film plot was is very really good great fine bad awful poor paris london "
         "peter anna visited in and not play . ,").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##ing", "##s", "##ly"]


def tiny_config(**overrides):
    from electra_tf.config import ModelConfig
    return ModelConfig(**{
        **dict(vocab_size=len(VOCAB), embedding_size=16, hidden_size=32, num_hidden_layers=2,
               num_attention_heads=2, intermediate_size=64, generator_hidden_size=0.5),
        **overrides})


def finetune_options(**values):
    """FinetuneOptions with `values` on top of the defaults (those of run_finetuning.py's flags),
    the task's sequence length resolved when a task is given; not validated, so a test can
    leave out what it does not use."""
    from electra_tf.finetune import options

    built = options.FinetuneOptions(**values)
    return options.resolve(built) if built.task else built


POSITIVE, NEGATIVE = ("good", "great", "fine"), ("bad", "awful", "poor")


def sentiment_rows(count: int, seed: int) -> list:
    """(text, label) pairs whose label is told by one word: learnable in a few dozen steps."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(["pos", "neg"])
        word = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        subject = rng.choice(["movie", "film", "plot"])
        adverb = rng.choice(["", "very ", "really "])
        rows.append((f"The {subject} was {adverb}{word.upper() if rng.random() < .2 else word} .",
                     label))
    return rows


def write_table(path, header: list, rows: list, delimiter: str = "\t") -> str:
    lines = [delimiter.join(header)] + [delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


NAMES = {"peter": "PER", "anna": "PER", "paris": "LOC", "london": "LOC"}


def tagged_sentences(count: int, seed: int) -> list:
    """Sentences of (word, tag) with BIO tags told by the word itself (names, places)."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        person, place = rng.choice(["peter", "anna"]), rng.choice(["paris", "london"])
        words = [person.title(), "visited", place.title(), "and", "the", "film", "."]
        if rng.random() < .5:
            words = ["The", "plays", "in", place, "were", "fine", "."]
        sentences.append([(w, f"B-{NAMES[w.lower()]}" if w.lower() in NAMES else "O")
                          for w in words])
    return sentences


def write_conll(path, sentences: list, with_tags: bool = True) -> str:
    lines = []
    for sentence in sentences:
        lines.extend(f"{w} NN {t}" if with_tags else w for w, t in sentence)
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)
