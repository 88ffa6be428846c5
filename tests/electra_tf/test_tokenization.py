"""Parity of the tensorflow-text tokenizer with the plain-Python reference, and packing."""

import collections
import random
import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from bench.reference import bert_tokenizer as reference
from electra_tf import tokenization
from electra_tf.cli import UserError
from electra_tf.config import SPECIAL_TOKENS
from electra_tf.tokenization import Tokenizer, load_vocab, pack_segments

# One string per hard case the reference's normalization has (and a few combinations).
HARD_STRINGS = [
    "Hello, World! The quick brown fox's \"jumps\" (over) [the] {lazy} dog... #1 @home $5 50%",
    "Café naïve résumé Ångström Ñandú façade coöperate São Paulo Kraków Dvořák",
    "İstanbul İİ iİ DİYARBAKIR ıi",  # Turkish dotted capital I lower-cases to i + U+0307
    "ΟΔΟΣ ΣΑΣ. ΣΟΦΟΣ, Σ ΣΣ ΑΣ' ΑΣ.Β ΑΣ\u0301 Α\u0301Σ ΣΑ ΌΣΟΣ ΜΆΘΗΜΑ ἈΣ",  # final sigma
    "Straße STRASSE ẞ ß groß GRÖẞE",  # sharp s: lower() keeps it (case folding would not)
    "ﬁnance ﬂow ﬀ ﬃ ﬆ Ǆemal ǅ ǆ Ĳ",  # ligatures
    "½ ¼ ¾ ⅓ x² H₂O 10³ ⁿ ª º ㎏ ㍿ ™ №",  # fractions, super/subscripts, compatibility
    "non\u2011breaking e\u2010mail a\u2013b a\u2014b \u2212 1\u20442",  # hyphens and dashes
    "中文字符测试 日本語のテキスト 한국어 텍스트 漢字かな交じり 㐀 𠀀 豈 丽",  # CJK, kana, Hangul
    "emoji 😀👍🏽 👨‍👩‍👧 🇩🇪 ❤️ ©®",  # emoji, ZWJ sequences, flags, variation selectors
    "tab\there new\nline cr\rhere ff\x0cvt\x0b fs\x1cgs\x1drs\x1eus\x1f nel\x85end",
    "nul\x00byte bell\x07 del\x7f c1\x80\x9f replacement\ufffdchar",
    "zero\u200bwidth zw\u200cnj zw\u200dj lrm\u200erlm\u200f bom\ufeffword soft\u00adhyphen",
    "nbsp\u00a0here ogham\u1680x en\u2002em\u2003thin\u2009hair\u200a narrow\u202fmath"
    "\u205fideo\u3000end line\u2028sep para\u2029sep mongolian\u180evs",
    "combining e\u0301 a\u0300\u0301\u0302 \u0301lead x\u20dd y\u0488 z\u0903 ш\u0306 ก\u0e34",
    "greek varia a\u1fefb oxia a\u1ffdb ano\u0387teleia q\u037emark",
    "word" * 50 + " " + "x" * 200 + " " + "y" * 201 + " " + "é" * 201 + " " + "中" * 250,
    "unaffable unaffableness runningly playing played \u00c9TAT L'ÉTAT aujourd'hui",
    "private\ue000use unassigned\u0378x tag\U000e0041 vs\ufe0f sel\U000e0100 surrogate-free",
    # Every "C" category goes, private use (Co) and unassigned (Cn) included: scraped text is
    # full of icon-font glyphs, the Apple logo and noncharacters.
    "apple\uf8ff logo \uf8ff \uf8ffx icons\uf000\uf001\uf2e0 fa\uf015home \ue000\ue801 \uf8ff!",
    "plane15 \U000f0000\U000ffffd x plane16 \U00100000y\U0010fffd \U000fffff\U0010ffff",
    "nonchar\ufffe\uffff \ufdd0\ufdefz \U0001fffe\U0001ffff \U0003fffe \U000efffe end",
    "unassigned\u0378\u0379 \u0380\u0e5c\u2fe0x \U000e0080 \U0002ebf0\U0003134b? q\U000e01f0",
    "after unicode 14: \U000105c9 \U00011383x \U00016121 \U00016d68 \U0001fae8 \U0001f6dc",
    "Ⓐpple\uf8ffWatch FOLLOW\ue00e\ue00e me \uf8ff\uf8ff\uf8ff ΣΑΣ\uf8ff ΣΑ\uf8ffΣ Ι\ue000\u0301",
    "Ⅻ ⓐⒶ 𝐀𝐁𝐂 𝔘𝔫𝔦 ＦＵＬＬ ｗｉｄｔｈ ﹏ ︰ ゛",  # math alphanumerics, full width
    "ÀÉÎÕÜ ǅ ῼ ᾈ ΐ ǰ ŉ K Å Ω",  # titlecase, iota subscript, singleton decompositions
    "", "   ", "\t\n", "\u200b", "\x00", "\ufffd",
    "a", "A", "##", "#a", "[UNK]", "[CLS] [SEP] [MASK]",
    "  leading and trailing  ", "multiple   spaces\t\t\ttabs",
]

TOKENIZER_OPTIONS = [(True, True), (True, False), (False, True)]


def _seed_words():
    """Words a realistic vocabulary is made of, normalized the reference's three ways."""
    text = " ".join(HARD_STRINGS) + (
        " the of and to in a is that for it as was with be by on not he this are or his from at"
        " which but have an they you were her she there been one all we their has would when"
        " run running runs played playing play able affable un ness ly ing ed er est s")
    words = collections.Counter()
    for lower, strip in TOKENIZER_OPTIONS:
        words.update(reference.basic_tokenize(text, lower, strip))
    return words


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    """SPECIAL_TOKENS, most characters alone and as "##" pieces (every 7th is left out so that
    some words cannot be cut), whole words and word tails."""
    words = _seed_words()
    chars = sorted({c for w in words for c in w})
    kept = [c for i, c in enumerate(chars) if i % 7 != 3]
    tokens = list(SPECIAL_TOKENS) + kept + ["##" + c for c in kept]
    for word, _ in words.most_common(150):
        tokens += [word, "##" + word[len(word) // 2:], word[:3]]
    tokens = list(dict.fromkeys(t for t in tokens if t))  # unique, in first-seen order
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizers(vocab_file):
    return {options: Tokenizer(vocab_file, *options) for options in TOKENIZER_OPTIONS}


def _oracle(vocab_file, lower, strip):
    return reference.BertTokenizer.from_file(vocab_file, do_lower_case=lower,
                                             strip_accents=strip)


def _random_strings(vocab, count, seed):
    """Strings mixing characters of every Unicode category with vocabulary words."""
    rng = random.Random(seed)
    by_category = collections.defaultdict(list)
    for cp in range(0x30000):
        if not 0xD800 <= cp <= 0xDFFF:
            by_category[unicodedata.category(chr(cp))].append(chr(cp))
    categories = sorted(by_category)
    hard_chars = sorted(set("".join(HARD_STRINGS)))
    words = [t.lstrip("#") for t in vocab if not t.startswith("[")]
    strings = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 25)):
            r = rng.random()
            if r < 0.3:
                parts.append(rng.choice(words))
            elif r < 0.4:
                parts.append(rng.choice(words).upper())
            elif r < 0.65:
                parts.append(rng.choice(hard_chars))
            else:
                parts.append(rng.choice(by_category[rng.choice(categories)]))
            if rng.random() < 0.3:
                parts.append(rng.choice(" \t\u00a0\u3000"))
        strings.append("".join(parts))
    return strings


@pytest.mark.parametrize("options", TOKENIZER_OPTIONS)
def test_hard_strings_match_reference(tokenizers, vocab_file, options):
    tokenizer, oracle = tokenizers[options], _oracle(vocab_file, *options)
    got = tokenizer.pieces(HARD_STRINGS)
    for text, pieces in zip(HARD_STRINGS, got):
        assert pieces == oracle.tokenize(text), repr(text)


@pytest.mark.parametrize("options", TOKENIZER_OPTIONS)
def test_random_unicode_matches_reference(tokenizers, vocab_file, options):
    tokenizer, oracle = tokenizers[options], _oracle(vocab_file, *options)
    strings = _random_strings(tokenizer.vocab, 1500, seed=sum(options))
    got = tokenizer.ids(strings)
    mismatches = [s for s, ids in zip(strings, got) if ids != oracle.ids(s)]
    assert not mismatches, [repr(s) for s in mismatches[:5]]


@pytest.mark.parametrize("options", TOKENIZER_OPTIONS)
def test_printable_ascii_lines_match_reference(tokenizers, vocab_file, options):
    """Lines of printable ASCII only take the tokenizer's short way; mixed into a batch with
    other lines, each must still get the reference's pieces, in its own place."""
    tokenizer, oracle = tokenizers[options], _oracle(vocab_file, *options)
    rng = random.Random(7)
    printable = [chr(c) for c in range(0x20, 0x7F)]
    words = [t.lstrip("#") for t in tokenizer.vocab if t.isascii() and not t.startswith("[")]
    lines = []
    for i in range(600):
        parts = []
        for _ in range(rng.randint(0, 30)):
            r = rng.random()
            word = rng.choice(words)
            parts.append(word.upper() if r < 0.2 else word if r < 0.6 else rng.choice(printable))
        line = "".join(parts)
        if i % 5 == 0:  # every fifth line leaves printable ASCII
            line += rng.choice(["\t", "\x7f", "\u00c9", "\u03a3", "\x00", "\u3000x"])
        lines.append(line)
    got = tokenizer.ids(lines)
    mismatches = [s for s, ids in zip(lines, got) if ids != oracle.ids(s)]
    assert not mismatches, [repr(s) for s in mismatches[:5]]


def test_a_vocabulary_of_punctuated_tokens_only(tmp_path):
    """tensorflow-text cannot build its splitting WordPiece model from tokens that all hold
    punctuation; such a vocabulary still tokenizes as the reference does."""
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(list(SPECIAL_TOKENS) + ["!", "##!", "a.b"]) + "\n",
                    encoding="utf-8")
    lines = ["Hello, world!", "a.b !!", ""]
    assert Tokenizer(str(path)).pieces(lines) == [
        ["[UNK]", "[UNK]", "[UNK]", "!"], ["[UNK]", "[UNK]", "[UNK]", "!", "!"], []]
    assert Tokenizer(str(path)).pieces(lines) == [_oracle(str(path), True, True).tokenize(t)
                                                  for t in lines]


def test_rules_on_a_hand_made_vocab(tmp_path):
    """Expected pieces worked out by hand from the recipe's rules."""
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(list(SPECIAL_TOKENS) + [
        "cafe", "Café", "σοφος", "σοφοσ", "i", "straße", "ﬁ", "##nance", "½", "中", "!", "ʼ",
        "un", "##aff", "##able", "##a", "x"]) + "\n", encoding="utf-8")
    text = "Café, ΣΟΦΟΣ İ STRAẞE ﬁnance ½中! unaffable unaffablez " + "x" * 201
    assert Tokenizer(str(path)).pieces([text]) == [[
        "cafe", "[UNK]", "σοφος", "i", "straße", "ﬁ", "##nance", "½", "中", "!",
        "un", "##aff", "##able", "[UNK]", "[UNK]"]]
    assert Tokenizer(str(path), do_lower_case=False).pieces(["Café İ x"]) == [
        ["Café", "[UNK]", "x"]]


def test_other_categories_are_dropped_by_hand(tmp_path):
    """The recipe's cleaning drops private-use, unassigned and noncharacter code points (as it
    drops control and format characters): worked out by hand, without the oracle."""
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(list(SPECIAL_TOKENS) + [
        "ab", "a", "##b", "x", "y", "\uf8ff", "\ue000", "\u0378", "\U0010fffd"]) + "\n",
        encoding="utf-8")
    tokenizer = Tokenizer(str(path))
    texts = ["a\uf8ffb", "x \ue000 y", "\U0010fffd", "a\u0378b\ufffex", "y\ufdd0\uffff",
             "\U000e0001x\U000e0080", "\U0001fae8"]
    assert tokenizer.pieces(texts) == [["ab"], ["x", "y"], [], ["[UNK]"], ["y"], ["x"], []]
    assert Tokenizer(str(path), do_lower_case=False).pieces(texts[:2]) == [["ab"], ["x", "y"]]


def _every_code_point_lines(width: int = 400) -> list:
    """Every code point but the surrogates, each between two letters, `width` per line."""
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    return [" ".join(f"a{chr(cp)}b" for cp in cps[i:i + width])
            for i in range(0, len(cps), width)]


@pytest.mark.parametrize("options", [(True, True), (False, True)])
def test_every_code_point_matches_reference(tokenizers, vocab_file, options):
    tokenizer, oracle = tokenizers[options], _oracle(vocab_file, *options)
    lines = _every_code_point_lines()
    got = tokenizer.ids(lines)
    mismatches = [line for line, ids in zip(lines, got) if ids != oracle.ids(line)]
    assert not mismatches, f"{len(mismatches)} of {len(lines)} lines differ, e.g. " + repr(
        [f"U+{ord(c):04X}" for c in mismatches[0][1::4]][:8])


def test_invalid_utf8_is_dropped_like_the_reference(tokenizers, vocab_file):
    oracle = _oracle(vocab_file, True, True)
    raw = [b"caf\xc3\xa9 x\xffy \xe4\xb8 the", b"\xf0\x9f\x98", b"ok \xc3\x28 the\x80",
           b"a\xed\xa0\x80b", b"a\xf4\x90\x80\x80b", b"a\xe0\x80\x80b", b"a\xc0\x80b"]
    tokenizer = tokenizers[(True, True)]
    expected = [oracle.ids(r.decode("utf-8", "ignore")) for r in raw]
    assert tokenizer.ids(raw) == expected
    # Alone, too: a batch of otherwise valid lines must still catch every malformed form
    # (surrogates, code points past U+10FFFF, overlong encodings).
    assert [tokenizer.ids([r, b"the"])[0] for r in raw] == expected


def test_tokenize_in_graph_and_saved_model(tokenizers, tmp_path):
    tokenizer = tokenizers[(True, True)]
    texts = ["Hello, the ΟΔΟΣ café!", "", "中文 emoji 😀"]
    expected = tokenizer.ids(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def wrapped(t):
        ids = tokenizer.tokenize(t)
        return ids, tokenizer.id_to_token(ids)

    ids, tokens = wrapped(tf.constant(texts))
    assert ids.dtype == tf.int64 and ids.to_list() == expected
    assert [[t.decode() for t in row] for row in tokens.to_list()] == tokenizer.pieces(texts)

    tf.saved_model.save(tokenizer, str(tmp_path / "tokenizer"))
    loaded = tf.saved_model.load(str(tmp_path / "tokenizer"))
    assert loaded.tokenize(tf.constant(texts)).to_list() == expected


def test_ids_batches_without_retracing(tokenizers):
    tokenizer = tokenizers[(True, True)]
    lines = [f"line {i} the" for i in range(tokenization.BATCH_LINES + 7)]
    before = tokenizer.tokenize.experimental_get_tracing_count()
    rows = tokenizer.ids(lines)
    tokenizer.ids(lines[:3])
    assert len(rows) == len(lines) and rows[-1] == tokenizer.ids([lines[-1]])[0]
    assert tokenizer.tokenize.experimental_get_tracing_count() - before <= 1


def test_long_lines_are_cut_at_spaces_with_the_same_pieces(tokenizers, vocab_file, monkeypatch):
    monkeypatch.setattr(tokenization, "SEGMENT_LENGTH", 40)
    monkeypatch.setattr(tokenization, "BATCH_LINES", 3)
    lines = [" ".join(HARD_STRINGS), "ΑΣ " * 30 + "x" * 300 + " ΟΔΟΣ  end ", "y" * 120, "", "a b"]
    oracle = _oracle(vocab_file, True, True)
    tokenizer = tokenizers[(True, True)]
    expected = [oracle.ids(line) for line in lines]
    assert tokenizer.ids(lines) == expected
    assert tokenizer.ids([line.encode("utf-8") for line in lines]) == expected


@pytest.mark.parametrize("line", ["ab cd  ef " * 20, "x" * 50 + " " + "y" * 5, " " * 30, "a" * 99])
def test_split_at_spaces(line):
    for text in (line, line.encode()):
        parts = tokenization.split_at_spaces(text, 12)
        assert (" " if isinstance(text, str) else b" ").join(parts) == text
        long_parts = [p for p in parts if len(p) > 12]
        assert all((" " if isinstance(p, str) else b" ") not in p[1:12] for p in long_parts)


def test_attributes(tokenizers, vocab_file):
    tokenizer = tokenizers[(True, True)]
    vocab = load_vocab(vocab_file)
    assert tokenizer.vocab == vocab and tokenizer.vocab_size == len(vocab)
    assert tokenizer.vocab_file == vocab_file
    assert [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id,
            tokenizer.mask_id] == [vocab.index(t) for t in SPECIAL_TOKENS]
    assert tokenizer.pad_id == 0
    assert (tokenizer.do_lower_case, tokenizer.strip_accents) == (True, True)


@pytest.mark.parametrize("lines, message", [
    (None, "not found"),
    (["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], "[PAD] must be id 0"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], "[MASK]"),
    (["[PAD]", "[CLS]", "[SEP]", "[MASK]"], "[UNK]"),
    (["[PAD]", "[UNK]", "[CLS]", "", "[SEP]", "[MASK]"], "line 4 is empty"),
    (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"], "lines 6 and 7"),
    ([], "empty"),
])
def test_vocab_validation(tmp_path, lines, message):
    path = tmp_path / "vocab.txt"
    if lines is not None:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(UserError) as error:
        Tokenizer(str(path))
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def _reference_pack(a, b, max_len, cls_id, sep_id):
    """The reference fine-tuning layout, by popping tokens one at a time."""
    a, b = list(a), (None if b is None else list(b))
    if b is None:
        a = a[:max_len - 2]
        ids, segments = [cls_id] + a + [sep_id], [0] * (len(a) + 2)
    else:
        while len(a) + len(b) > max_len - 3:
            (a if len(a) > len(b) else b).pop()
        ids = [cls_id] + a + [sep_id] + b + [sep_id]
        segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    pad = max_len - len(ids)
    return ids + [0] * pad, [1] * len(ids) + [0] * pad, segments + [0] * pad


@pytest.mark.parametrize("pair", [True, False])
def test_pack_segments_matches_reference_truncation(pair):
    rng = random.Random(7)
    max_len = 11
    rows_a = [[rng.randint(5, 99) for _ in range(rng.randint(0, 14))] for _ in range(200)]
    rows_b = [[rng.randint(5, 99) for _ in range(rng.randint(0, 14))] for _ in range(200)]
    features = pack_segments(tf.ragged.constant(rows_a, tf.int64),
                             tf.ragged.constant(rows_b, tf.int64) if pair else None,
                             max_len, cls_id=2, sep_id=3)
    for key in ("input_ids", "input_mask", "segment_ids"):
        assert features[key].dtype == tf.int32 and features[key].shape == (200, max_len)
    for i, (a, b) in enumerate(zip(rows_a, rows_b)):
        ids, mask, segments = _reference_pack(a, b if pair else None, max_len, 2, 3)
        assert features["input_ids"][i].numpy().tolist() == ids
        assert features["input_mask"][i].numpy().tolist() == mask
        assert features["segment_ids"][i].numpy().tolist() == segments


def test_pack_segments_in_graph_from_tokenizer(tokenizers):
    tokenizer = tokenizers[(True, True)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def encode(a, b):
        return pack_segments(tokenizer.tokenize(a), tokenizer.tokenize(b), 16,
                             tokenizer.cls_id, tokenizer.sep_id)

    features = encode(tf.constant(["the cafe", "a"]), tf.constant(["run", ""]))
    ids = features["input_ids"].numpy()
    a, b = tokenizer.ids(["the cafe", "run"])
    assert ids[0, :len(a) + len(b) + 3].tolist() == (
        [tokenizer.cls_id] + a + [tokenizer.sep_id] + b + [tokenizer.sep_id])
    assert np.all(ids[0, len(a) + len(b) + 3:] == 0)
    length_a = len(tokenizer.ids(["a"])[0])
    assert features["segment_ids"].numpy()[1].tolist()[:length_a + 4] == (
        [0] * (length_a + 2) + [1, 0])
