"""Corpus reading: documents, sharding by position, undecodable bytes, huge lines, bad paths."""

import tracemalloc

import pytest

from data_prep import sources
from electra_tf.cli import UserError
from tests.data_prep.corpus_fixtures import corpus_text, documents


def read_documents(corpus, shard=None):
    """The documents of a shard (default: the whole corpus) as lists of lines."""
    shard = shard or sources.Range(0, corpus.total_size)
    docs, current = [], []
    for line in corpus.read(shard):
        if line is None:
            docs.append(current)
            current = []
        else:
            current.append(line)
    assert current == [], "every document must be ended"
    return docs


@pytest.fixture
def messy_files(tmp_path):
    """Several files with the awkward cases: leading/trailing/multiple blank lines, whitespace-
    only lines, CRLF, no final newline, and an empty file."""
    texts = [
        "\n\nfirst doc line one\nline two\n\n\n \t \nsecond doc\r\nstill second\r\n\r\nthird",
        "",
        corpus_text(documents(40, seed=3)),
        "lonely\n\n",
        corpus_text(documents(25, seed=4)).rstrip("\n"),
    ]
    paths = []
    for i, text in enumerate(texts):
        path = tmp_path / f"part{i}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths, texts


def expected_documents(texts, blanks_separate_docs=True):
    docs = []
    for text in texts:
        if blanks_separate_docs:
            current = []
            for line in text.split("\n"):
                if line.strip():
                    current.append(line.strip())
                elif current:
                    docs.append(current)
                    current = []
            if current:
                docs.append(current)
        else:
            lines = [line.strip() for line in text.split("\n") if line.strip()]
            if lines:
                docs.append(lines)
    return docs


@pytest.mark.parametrize("blanks", [True, False])
def test_documents_and_lines(messy_files, blanks):
    paths, texts = messy_files
    corpus = sources.FileCorpus(paths, blanks_separate_docs=blanks)
    assert read_documents(corpus) == expected_documents(texts, blanks)


@pytest.mark.parametrize("blanks", [True, False])
def test_shards_partition_the_documents_whatever_their_number(messy_files, blanks):
    paths, texts = messy_files
    corpus = sources.FileCorpus(paths, blanks_separate_docs=blanks)
    expected = expected_documents(texts, blanks)
    for count in (1, 2, 3, 7, 16, 61):
        shards = corpus.ranges(0, corpus.total_size, count)
        assert shards[0].start == 0 and shards[-1].stop == corpus.total_size
        got = [doc for shard in shards for doc in read_documents(corpus, shard)]
        assert got == expected, count


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    path = tmp_path / "latin1.txt"
    # \xe9 and \xff are invalid alone; \xc3\x28 is a broken 2-byte sequence (one bad byte).
    path.write_bytes(b"caf\xe9 au lait\n\nok line\nbad \xff\xff end\n\xc3\x28 x\n")
    corpus = sources.FileCorpus([str(path)], blanks_separate_docs=True)
    before = sources.undecodable_bytes_so_far()
    docs = read_documents(corpus)
    assert sources.undecodable_bytes_so_far() - before == 4
    assert docs == [["caf\ufffd au lait"], ["ok line", "bad \ufffd\ufffd end", "\ufffd( x"]]


def test_a_huge_line_is_read_in_bounded_pieces_without_splitting_words(tmp_path):
    long_line = "alpha beta gamma délta " * 1_000_000  # 24 MB in one line
    path = tmp_path / "huge.txt"
    path.write_bytes(b"before\n" + long_line.encode("utf-8") + b"\nafter\n\n" + b"x" * 10)
    corpus = sources.FileCorpus([str(path)], blanks_separate_docs=True)
    whole = sources.Range(0, corpus.total_size)
    tracemalloc.start()
    longest = 0
    for line in corpus.read(whole):
        longest = max(longest, len(line or ""))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert longest <= sources.MAX_LINE_BYTES
    assert peak < 12 * sources.MAX_LINE_BYTES  # reading the line whole would take > 24 MB

    lines = list(corpus.read(whole))
    assert lines[0] == "before" and lines[-4:] == ["after", None, "x" * 10, None]
    pieces = lines[1:-4]
    n_bytes = len(long_line.encode("utf-8"))
    assert n_bytes / sources.MAX_LINE_BYTES <= len(pieces) <= n_bytes / sources.MAX_LINE_BYTES + 2
    assert " ".join(pieces) == long_line.strip()  # cut at spaces only: no word is split


def test_a_huge_line_without_spaces_is_cut_between_characters(tmp_path):
    path = tmp_path / "cjk.txt"
    path.write_bytes(("漢字" * 400_000).encode("utf-8"))  # 2.4 MB, 3-byte characters
    corpus = sources.FileCorpus([str(path)], blanks_separate_docs=True)
    before = sources.undecodable_bytes_so_far()
    lines = [line for line in corpus.read(sources.Range(0, corpus.total_size)) if line]
    assert sources.undecodable_bytes_so_far() == before
    assert "".join(lines) == "漢字" * 400_000 and len(lines) == 3


def test_binary_files_are_skipped_with_a_warning(tmp_path, caplog):
    text = tmp_path / "a.txt"
    text.write_text("hello world\n")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    corpus = sources.FileCorpus([str(text), str(binary)], blanks_separate_docs=True)
    assert [f.path for f in corpus.files] == [str(text)]
    assert corpus.skipped_binary == [str(binary)]
    assert any("b.bin" in r.getMessage() for r in caplog.records)
    with pytest.raises(UserError, match="no text files"):
        sources.FileCorpus([str(binary)], blanks_separate_docs=True)


def test_resolve_files(tmp_path):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "sub").mkdir()
    assert sources.resolve_files(str(tmp_path), []) == [str(tmp_path / "a.txt"),
                                                         str(tmp_path / "b.txt")]
    assert sources.resolve_files(None, [str(tmp_path / "b*"), str(tmp_path / "*.txt")]) == [
        str(tmp_path / "b.txt"), str(tmp_path / "a.txt")]
    with pytest.raises(UserError, match="no such directory"):
        sources.resolve_files(str(tmp_path / "missing"), [])
    with pytest.raises(UserError, match="holds no files"):
        sources.resolve_files(str(tmp_path / "sub"), [])
    with pytest.raises(UserError, match="matches no file"):
        sources.resolve_files(None, [str(tmp_path / "*.md")])
    (tmp_path / "sub" / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        sources.FileCorpus(sources.resolve_files(str(tmp_path / "sub"), []), True)
