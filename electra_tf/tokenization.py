"""The BERT/ELECTRA WordPiece tokenizer as TensorFlow ops (docs/RECIPE.md "Data preparation").

The reference recipe tokenizes in plain Python: clean the text (drop NUL, U+FFFD and every
character whose Unicode category starts with "C": control, format, surrogate, private use and
unassigned; tab, newline and carriage return are whitespace, and every whitespace character
becomes a space), put spaces around CJK ideographs,
split on whitespace, lower-case each word with Python's `str.lower` and strip its accents (NFD,
then drop the Mn marks), split off every punctuation character, and cut each word into the
longest-match-first WordPieces ("##" marks a continuation); a word over 200 characters, or one
that cannot be cut, becomes a single [UNK].

`Tokenizer.tokenize` does exactly that inside a TensorFlow graph, so an exported SavedModel
tokenizes raw text with no Python. The pieces:

- The character classes (the "C" categories, whitespace, punctuation, Mn, the cased and
  case-ignorable characters of the final-sigma rule) are enumerated from the running Python's
  `unicodedata` and `str.lower` and written into RE2 character classes, so the graph follows the
  same Unicode database as the reference instead of RE2's or ICU's own tables (RE2's `\\s` is
  ASCII-only, for instance, while the reference treats every Zs character as whitespace).
- Lower-casing uses `tf.strings.lower(encoding="utf-8")` (ICU full case mapping, like
  `str.lower`: U+0130 becomes "i" + U+0307, U+1E9E becomes U+00DF), not tensorflow-text's NFKC
  case folding (which would turn U+2011 into U+2010, ligatures and fractions into their parts,
  superscripts into digits and U+00DF into "ss"). Where ICU's tables are older than Python's,
  the few characters it lower-cases differently are mapped first, code point by code point; the
  Greek capital sigma is resolved to final or medial form by a regular expression built from
  Python's own Final_Sigma context, since the two libraries' case properties differ in age.
- NFD comes from `tensorflow_text.normalize_utf8`.
- WordPiece is `tensorflow_text.FastWordpieceTokenizer` (the same greedy longest-match-first
  result as the reference) on words that are already split.
- Lines of printable ASCII (most lines of an English corpus) skip all of the above, which
  cannot change them but ASCII lower-casing: a second FastWordpieceTokenizer splits them itself,
  at spaces and at ASCII punctuation (the reference's rules there), with a limit of 200 bytes a
  word (200 characters there). The two kinds of lines are split apart and put back in order in
  the graph; a corpus of mostly ASCII lines tokenizes about twice as fast.

ICU's tables (case mapping, NFD) are newer than the running Python's Unicode database, but they
never see a character that database leaves unassigned: cleaning removes every such code point
first, as the reference does, so each rule is decided by Python's database alone.
"""

import functools
import itertools
import sys
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.config import SPECIAL_TOKENS
from electra_tf.io import first_line

MAX_CHARS_PER_WORD = 200
SUFFIX_INDICATOR = "##"
# Lines per call of the compiled tokenize function in `ids`/`pieces`, and at most about this
# many characters per call; longer lines are cut (at spaces) into segments of about this size.
BATCH_LINES = 2048
BATCH_LENGTH = 4 << 20
SEGMENT_LENGTH = 1 << 20

# The reference's CJK ideograph blocks (CJK Unified Ideographs and extensions A-E, and the
# compatibility ideographs), which get spaces around them whatever their Unicode category.
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
ASCII_PUNCTUATION = frozenset(chr(cp) for lo, hi in ((33, 47), (58, 64), (91, 96), (123, 126))
                              for cp in range(lo, hi + 1))
CAPITAL_SIGMA, SMALL_SIGMA, FINAL_SIGMA = "\u03a3", "\u03c3", "\u03c2"


def load_vocab(path: str) -> list[str]:
    """Reads a WordPiece vocabulary, one token per line (id = line number).

    Raises UserError naming the file if it is missing or unreadable, if [PAD] is not id 0, if
    one of [UNK], [CLS], [SEP], [MASK] is missing, or if a line is empty or repeated.
    """
    try:
        found = tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)
    except tf.errors.OpError as e:
        raise UserError(f"cannot read vocabulary file {path}: {first_line(e)}") from None
    if not found:
        raise UserError(f"vocabulary file not found: {path}")
    try:
        text = io.read_text(path)
    except (tf.errors.OpError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read vocabulary file {path}: {first_line(e)}") from None
    # Lines as a text-mode file gives them (universal newlines, no empty last line).
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    vocab = [line.strip() for line in (lines[:-1] if lines[-1] == "" else lines)]
    if not vocab:
        raise UserError(f"vocabulary file is empty: {path}")
    if vocab[0] != "[PAD]":
        raise UserError(f"vocabulary {path}: [PAD] must be id 0 (line 1), found {vocab[0]!r}")
    seen = {}
    for i, token in enumerate(vocab):
        if not token:
            raise UserError(f"vocabulary {path}: line {i + 1} is empty")
        if token in seen:
            raise UserError(f"vocabulary {path}: token {token!r} on lines {seen[token] + 1} "
                            f"and {i + 1}")
        seen[token] = i
    missing = [t for t in SPECIAL_TOKENS if t not in seen]
    if missing:
        raise UserError(f"vocabulary {path} lacks the special token(s) {', '.join(missing)}")
    return vocab


def _char_class(code_points: Iterable[int]) -> str:
    """An RE2 character class matching exactly the given code points."""
    cps = sorted(set(code_points))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + "".join(parts) + "]"


def _all_chars(end: int = sys.maxunicode + 1) -> list[str]:
    return list(map(chr, itertools.chain(range(0xD800), range(0xE000, end))))


def _lower_each(chars: list[str], prefix: str = "", suffix: str = "") -> list[str]:
    """Python's lower-casing of prefix + c + suffix for each c, in one call (newline-separated;
    no character here is newline, and newline is neither cased nor case-ignorable)."""
    return "\n".join(prefix + c + suffix for c in chars).lower().split("\n")


@functools.cache
def unicode_tables() -> dict:
    """Character sets of the reference's rules, from the running Python's Unicode database."""
    removed, whitespace, punctuation, nonspacing, assigned = [], [], [], [], []
    chars = _all_chars()
    for ch, cat in zip(chars, map(unicodedata.category, chars)):
        if ch in "\t\n\r" or cat == "Zs" or (ch.isspace() and cat[0] != "C"):
            # \t \n \r are Cc but whitespace; U+2028/U+2029 (Zl, Zp) survive cleaning and
            # str.split() splits on them.
            whitespace.append(ord(ch))
        elif ch in "\x00\ufffd" or cat[0] == "C":
            # Every "other" category goes: control, format, private use and the code points
            # this Python's Unicode database leaves unassigned (noncharacters among them).
            removed.append(ord(ch))
            continue
        assigned.append(ch)
        if cat[0] == "P" or ch in ASCII_PUNCTUATION:
            punctuation.append(ord(ch))
        if cat == "Mn":
            nonspacing.append(ord(ch))
    # Python's Final_Sigma rule (CPython's handle_capital_sigma), read off str.lower itself: the
    # capital sigma is final when the nearest non-case-ignorable character before it is cased
    # and the nearest one after it is not. After "1" + c it is final iff c is cased and not
    # case-ignorable; after an alpha + c iff c is case-ignorable or cased.
    candidates = [c for c in assigned if c != "\n"]
    after_digit = _lower_each(candidates, "1", CAPITAL_SIGMA)
    after_alpha = _lower_each(candidates, "\u0391", CAPITAL_SIGMA)
    lead, case_ignorable = [], []
    for ch, d, a in zip(candidates, after_digit, after_alpha):
        if d[-1] == FINAL_SIGMA:
            lead.append(ord(ch))
        elif a[-1] == FINAL_SIGMA:
            case_ignorable.append(ord(ch))
    cjk = "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in CJK_RANGES)
    return {
        "removed": _char_class(removed),
        # Spaces stay as they are: replacing each by itself would cost a match per word.
        "whitespace": _char_class(cp for cp in whitespace if cp != 0x20),
        "split": _char_class(punctuation)[:-1] + cjk + "]",
        "nonspacing": _char_class(nonspacing),
        "final_sigma": "({lead}{ci}*){sigma}({ci}*(?:{stop}|$))".format(
            lead=_char_class(lead), ci=_char_class(case_ignorable),
            sigma=_char_class([ord(CAPITAL_SIGMA)]),
            stop="[^" + _char_class(lead + case_ignorable)[1:]),
    }


@functools.cache
def _lower_premap() -> tuple[list[int], list[int]]:
    """Characters that ICU lower-cases differently from Python, with Python's result.

    Each maps to Python's lower-case form before tf.strings.lower runs, which is only right when
    that form is one character that ICU leaves alone; every other difference is reported.
    """
    # NUL never reaches lower(), the sigma has its own rule, and newline separates the
    # characters in one string, so ICU sees each alone (no casing context) in a single call.
    # Only planes 0 and 1 hold cased scripts (2 and 3 are ideographs, 14 tags and selectors).
    skip = {"\x00", "\n", CAPITAL_SIGMA}
    chars = [c for c in _all_chars(0x20000) if c not in skip]
    icu = tf.strings.lower("\n".join(chars), encoding="utf-8").numpy().decode("utf-8")
    icu = icu.split("\n")
    assert len(icu) == len(chars), "tf.strings.lower changed the number of lines"
    keys, values, unmatched = [], [], []
    for ch, icu_lower, py_lower in zip(chars, icu, _lower_each(chars)):
        if icu_lower == py_lower:
            continue
        target = tf.strings.lower(py_lower, encoding="utf-8").numpy().decode("utf-8")
        if len(py_lower) == 1 and target == py_lower:
            keys.append(ord(ch))
            values.append(ord(py_lower))
        else:
            unmatched.append(f"U+{ord(ch):04X}")
    if unmatched:
        tf.get_logger().warning(
            "tf.strings.lower differs from Python's str.lower on %d characters that cannot be "
            "pre-mapped: %s", len(unmatched), " ".join(unmatched[:50]))
    return keys, values


def unicode_rules() -> tuple:
    """What a Tokenizer derives from Python's and ICU's Unicode tables (its character classes and
    lower-casing fixes), as plain Python values: half a second of work that a process can hand
    to the ones it starts (Tokenizer(rules=...)) instead of each of them deriving it again."""
    return unicode_tables(), _lower_premap()


class Tokenizer(tf.Module):
    """The reference BERT/ELECTRA tokenizer (basic tokenization + WordPiece) in TensorFlow ops.

    `do_lower_case` lower-cases as Python's `str.lower` does; `strip_accents` (only while
    lower-casing, like the reference) decomposes with NFD and drops the Mn marks.
    """

    def __init__(self, vocab_file: str, do_lower_case: bool = True, strip_accents: bool = True,
                 name: str = "tokenizer", rules: tuple | None = None):
        """`rules`: `unicode_rules()` of another process, if at hand (see there)."""
        super().__init__(name=name)
        self.vocab_file = str(vocab_file)
        self.vocab = load_vocab(self.vocab_file)
        self.vocab_size = len(self.vocab)
        index = {token: i for i, token in enumerate(self.vocab)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            index[t] for t in SPECIAL_TOKENS)
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = bool(strip_accents)
        self._tables, premap = rules or (unicode_tables(),
                                         _lower_premap() if self.do_lower_case else None)
        keys, values = premap if self.do_lower_case else ([], [])
        self._premap_keys = tf.constant(keys or [0], tf.int32)
        self._premap_values = tf.constant(values or [0], tf.int32)
        self._premap_class = _char_class(keys) if keys else None
        self._lower_special = _char_class(keys + [ord(CAPITAL_SIGMA)])
        self._vocab_table = tf.constant(self.vocab)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab, suffix_indicator=SUFFIX_INDICATOR,
            # Words over MAX_CHARS_PER_WORD characters are replaced by [UNK] before WordPiece;
            # every shorter word must reach it whole (4 bytes per character at most).
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD + 4,
            token_out_type=tf.int64, unknown_token="[UNK]", no_pretokenization=True)
        # Lines of printable ASCII (most lines of an English corpus) need none of the Unicode
        # rules: their only whitespace is the space, cleaning removes nothing, str.lower is
        # ASCII lower-casing there and NFD changes nothing; tensorflow-text's own splitting on
        # spaces and punctuation is the reference's for ASCII, and a character is a byte, so
        # its byte limit is the reference's 200-character rule.
        try:
            self._ascii_wordpiece = tf_text.FastWordpieceTokenizer(
                vocab=self.vocab, suffix_indicator=SUFFIX_INDICATOR,
                max_bytes_per_word=MAX_CHARS_PER_WORD, token_out_type=tf.int64,
                unknown_token="[UNK]", no_pretokenization=False)
        except RuntimeError:  # no token without punctuation (e.g. only the special tokens)
            self._ascii_wordpiece = None

    def _fix_lower_case(self, text: tf.Tensor) -> tf.Tensor:
        """What tf.strings.lower would otherwise get different from Python's str.lower."""
        text = tf.strings.regex_replace(text, self._tables["final_sigma"],
                                        "\\1" + FINAL_SIGMA + "\\2")
        text = tf.strings.regex_replace(text, CAPITAL_SIGMA, SMALL_SIGMA)
        if not self._premap_class:
            return text
        needs = tf.strings.regex_full_match(text, ".*" + self._premap_class + ".*")
        return tf.cond(tf.reduce_any(needs), lambda: self._premap_lower(text), lambda: text)

    def _premap_lower(self, text: tf.Tensor) -> tf.Tensor:
        cps = tf.strings.unicode_decode(text, "UTF-8")
        flat = cps.flat_values
        pos = tf.clip_by_value(tf.searchsorted(self._premap_keys, flat), 0,
                               tf.size(self._premap_keys) - 1)
        hit = tf.gather(self._premap_keys, pos) == flat
        flat = tf.where(hit, tf.gather(self._premap_values, pos), flat)
        return tf.strings.unicode_encode(cps.with_flat_values(flat), "UTF-8")

    def basic_tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """The reference's words before WordPiece: tf.string [batch] -> [batch, (words)]."""
        # CJK spacing comes after lower-casing here (the reference does it before): lower-casing
        # and NFD never create or move an ideograph, and ideographs are neither cased nor
        # case-ignorable, so the order does not change the result; one pass does both. (This
        # and a split on spaces are faster than tensorflow_text.regex_split.)
        text = tf.strings.regex_replace(self._normalize(texts), self._tables["split"], " \\0 ")
        return tf.strings.split(text)

    def _normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """The reference's cleaning, lower-casing and accent stripping of each line."""
        t = self._tables
        # Invalid UTF-8 becomes U+FFFD, which cleaning drops (the reference decodes "ignore").
        # RE2 matches this class only on well-formed UTF-8 ("." would also take surrogates,
        # overlong forms and code points past U+10FFFF); transcoding is rarely needed.
        valid = tf.reduce_all(tf.strings.regex_full_match(
            texts, "[\\x{0}-\\x{D7FF}\\x{E000}-\\x{10FFFF}]*"))
        text = tf.cond(valid, lambda: texts, lambda: tf.strings.unicode_transcode(
            texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD))
        text = tf.strings.regex_replace(text, t["whitespace"], " ")
        text = tf.strings.regex_replace(text, t["removed"], "")
        if self.do_lower_case:
            special = tf.strings.regex_full_match(text, ".*" + self._lower_special + ".*")
            text = tf.cond(tf.reduce_any(special), lambda: self._fix_lower_case(text),
                           lambda: text)
            text = tf.strings.lower(text, encoding="utf-8")
            if self.strip_accents:
                text = tf_text.normalize_utf8(text, "NFD")
                text = tf.strings.regex_replace(text, t["nonspacing"], "")
        return text

    # No autograph: the graph has no Python control flow, and converting tensorflow-text's
    # code would triple the tracing time.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """UTF-8 lines [batch] -> WordPiece ids, int64 RaggedTensor [batch, (pieces)]."""
        if self._ascii_wordpiece is None:
            return self._unicode_pieces(texts)
        printable = tf.cast(tf.strings.regex_full_match(texts, "[ -~]*"), tf.int32)
        rows = tf.dynamic_partition(tf.range(tf.size(texts)), printable, 2)
        other, ascii_text = tf.dynamic_partition(texts, printable, 2)
        if self.do_lower_case:
            ascii_text = tf.strings.lower(ascii_text)
        pieces = tf.concat([self._unicode_pieces(other),
                            self._ascii_wordpiece.tokenize(ascii_text)], axis=0)
        return tf.gather(pieces, tf.math.invert_permutation(tf.concat(rows, axis=0)))

    def _unicode_pieces(self, texts: tf.Tensor) -> tf.RaggedTensor:
        words = self.basic_tokenize(texts)
        flat = words.flat_values
        # A word has at least as many bytes as characters: counting bytes first (no decoding,
        # no copy) leaves the character count to the rare batch that has a long word.
        flat = tf.cond(tf.reduce_any(tf.strings.length(flat) > MAX_CHARS_PER_WORD),
                       lambda: _unk_if_too_long(flat), lambda: flat)
        return self._wordpiece.tokenize(words.with_flat_values(flat)).merge_dims(1, 2)

    def id_to_token(self, ids):
        """WordPiece ids (a Tensor or RaggedTensor of any shape) -> their tokens, in-graph."""
        return tf.ragged.map_flat_values(tf.gather, self._vocab_table, ids)

    def ids(self, lines: Sequence[str | bytes]) -> list[list[int]]:
        """WordPiece ids of each line (str, or UTF-8 bytes); eager, batched internally.

        Lines longer than SEGMENT_LENGTH are tokenized in pieces cut at spaces (which gives the
        same WordPieces), so a single huge line never needs a huge tensor.
        """
        out = [[] for _ in lines]
        owners, segments, size = [], [], 0
        for index, line in enumerate(lines):
            for segment in split_at_spaces(line, SEGMENT_LENGTH):
                owners.append(index)
                segments.append(segment)
                size += len(segment)
                if len(segments) >= BATCH_LINES or size >= BATCH_LENGTH:
                    self._ids_into(out, owners, segments)
                    owners, segments, size = [], [], 0
        if segments:
            self._ids_into(out, owners, segments)
        return out

    def _ids_into(self, out: list, owners: list[int], segments: list) -> None:
        ragged = self.tokenize(tf.constant(segments, tf.string))
        flat = ragged.flat_values.numpy().tolist()
        splits = ragged.row_splits.numpy().tolist()
        for owner, start, end in zip(owners, splits[:-1], splits[1:]):
            out[owner] += flat[start:end]

    def pieces(self, lines: Sequence[str]) -> list[list[str]]:
        """WordPiece strings of each line."""
        vocab = self.vocab
        return [[vocab[i] for i in row] for row in self.ids(lines)]


def _unk_if_too_long(words: tf.Tensor) -> tf.Tensor:
    too_long = tf.strings.length(words, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
    # "[UNK]" is itself a vocabulary token, so WordPiece maps it to exactly one [UNK].
    return tf.where(too_long, "[UNK]", words)


def split_at_spaces(line: str | bytes, max_length: int) -> list:
    """`line` cut at ASCII spaces into parts of at most about `max_length` (a part only grows
    past it where no space is near); the spaces at the cuts are dropped.

    WordPieces never span whitespace and every later rule of the reference (including the
    final-sigma context) stops at it, so the parts' WordPieces, concatenated, are the line's.
    """
    if len(line) <= max_length:
        return [line]
    space = " " if isinstance(line, str) else b" "
    parts, start = [], 0
    while len(line) - start > max_length:
        cut = line.rfind(space, start + 1, start + max_length)
        if cut < 0:
            cut = line.find(space, start + max_length)
            if cut < 0:
                break
        parts.append(line[start:cut])
        start = cut + 1
    parts.append(line[start:])
    return parts


def pack_segments(ids_a, ids_b, max_seq_length: int, cls_id: int, sep_id: int) -> dict:
    """Lays out [CLS] A [SEP] (B [SEP]) per row, as the reference's fine-tuning features.

    `ids_a`/`ids_b`: ragged int ids [batch, (tokens)]; `ids_b` may be None. A pair is truncated
    like the reference's _truncate_seq_pair (drop the last token of the longer segment, B on a
    tie, until both fit); a single segment keeps its first max_seq_length - 2 tokens. Returns
    dense int32 [batch, max_seq_length] `input_ids`, `input_mask`, `segment_ids`, zero-padded.
    """
    a = _as_ragged(ids_a)
    len_a = a.row_lengths()
    if ids_b is None:
        keep_a = tf.minimum(len_a, max_seq_length - 2)
        keep_b = tf.zeros_like(keep_a)
    else:
        b = _as_ragged(ids_b)
        len_b = b.row_lengths()
        budget = tf.constant(max_seq_length - 3, tf.int64)
        # Closed form of popping from the longer segment (B on ties) until the pair fits.
        keep_a = tf.minimum(len_a, tf.maximum(budget - len_b, (budget + 1) // 2))
        keep_b = tf.minimum(len_b, budget - keep_a)
    # Column c of a row holds: 0 [CLS]; 1..keep_a A; keep_a + 1 [SEP]; then B and [SEP].
    col = tf.range(max_seq_length, dtype=tf.int64)[tf.newaxis, :]
    end_a = tf.expand_dims(keep_a, 1) + 1  # column of the first [SEP]
    end_b = end_a + tf.expand_dims(keep_b, 1) + 1  # column of the second [SEP]
    length = end_a + 1 if ids_b is None else end_b + 1
    ids = tf.where(col == 0, cls_id, 0) + tf.where(col == end_a, sep_id, 0)
    ids += tf.where((col >= 1) & (col < end_a), _columns(a, col - 1, max_seq_length), 0)
    if ids_b is not None:
        ids += tf.where(col == end_b, sep_id, 0)
        ids += tf.where((col > end_a) & (col < end_b),
                        _columns(b, col - end_a - 1, max_seq_length), 0)
    mask = col < length
    return {
        "input_ids": ids,
        "input_mask": tf.cast(mask, tf.int32),
        "segment_ids": tf.cast(mask & (col > end_a), tf.int32),
    }


def _as_ragged(ids) -> tf.RaggedTensor:
    if isinstance(ids, tf.RaggedTensor):
        return ids
    if isinstance(ids, (tf.Tensor, np.ndarray)):
        return tf.RaggedTensor.from_tensor(ids)
    return tf.ragged.constant(ids, dtype=tf.int64)


def _columns(ids: tf.RaggedTensor, index: tf.Tensor, width: int) -> tf.Tensor:
    """int32 [batch, width]: ids[row, index[row, c]] (0 where the index is out of range)."""
    dense = tf.cast(ids.to_tensor(0, shape=[None, width]), tf.int32)
    index = tf.broadcast_to(tf.clip_by_value(index, 0, width - 1), tf.shape(dense, tf.int64))
    return tf.gather(dense, index, batch_dims=1)
