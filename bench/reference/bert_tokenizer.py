"""Plain-Python reference of the BERT/ELECTRA tokenizer (docs/RECIPE.md "Data preparation").

Written from the recipe's rules, character by character, as the oracle for the tensorflow-text
tokenizer's tests and as the baseline of bench/data_prep_throughput.py:

1. clean: drop NUL, U+FFFD and every character whose Unicode category starts with "C" (Cc, Cf,
   Cs, Co private use, Cn unassigned), except tab, newline and carriage return, which are
   whitespace; every whitespace character (those three, space, Zs) becomes a space;
2. put spaces around the CJK ideographs;
3. split on whitespace (Python's str.split);
4. per word, when lower-casing: str.lower, then (strip_accents) NFD and drop the Mn marks;
5. split off each punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, Unicode P*);
6. WordPiece: a word of more than 200 characters is [UNK]; otherwise repeatedly take the longest
   vocabulary entry that starts the rest of the word ("##" before every piece but the first);
   if some rest has no such entry the whole word is one [UNK].
"""

import unicodedata

MAX_CHARS_PER_WORD = 200

_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_removed(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return ch in "\x00\ufffd" or unicodedata.category(ch).startswith("C")


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokenize(text: str, do_lower_case: bool = True, strip_accents: bool = True) -> list:
    """Steps 1-5: the list of words."""
    cleaned = []
    for ch in text:
        if is_removed(ch):
            continue
        if is_whitespace(ch):
            cleaned.append(" ")
        elif is_cjk(ch):
            cleaned.append(" " + ch + " ")
        else:
            cleaned.append(ch)
    words = []
    for word in "".join(cleaned).split():
        if do_lower_case:
            word = word.lower()
            if strip_accents:
                word = "".join(c for c in unicodedata.normalize("NFD", word)
                               if unicodedata.category(c) != "Mn")
        current = []
        for ch in word:
            if is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


def wordpiece(word: str, vocab, unk_token: str = "[UNK]") -> list:
    """Step 6 for one word."""
    if len(word) > MAX_CHARS_PER_WORD:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


class BertTokenizer:
    """`tokenize(text)` -> list of WordPiece strings; `ids(text)` -> their vocabulary ids."""

    def __init__(self, vocab: list, do_lower_case: bool = True, strip_accents: bool = True):
        self.index = {token: i for i, token in enumerate(vocab)}
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents

    @classmethod
    def from_file(cls, path: str, **kwargs) -> "BertTokenizer":
        with open(path, encoding="utf-8") as f:
            return cls([line.strip() for line in f], **kwargs)

    def tokenize(self, text: str) -> list:
        pieces = []
        for word in basic_tokenize(text, self.do_lower_case, self.strip_accents):
            pieces.extend(wordpiece(word, self.index))
        return pieces

    def ids(self, text: str) -> list:
        return [self.index[p] for p in self.tokenize(text)]
