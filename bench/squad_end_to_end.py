"""A small end-to-end SQuAD 2.0 run (issue 6): the demo's pre-trained model fine-tuned on QA.

No SQuAD file is fetched (nothing comes from a hub), so this script writes a small sample in the
official SQuAD 2.0 JSON format from the demo's Wikipedia summaries: for an article whose first
sentence reads "SUBJECT is/was/are/were PHRASE, ...", the question is "What is SUBJECT?" and the
answer is PHRASE, found at its character offset in a context of the article's first sentences.
A quarter of the questions are asked against another article's context and have no answer.
The questions are templated, the texts are real. Articles are split by a fixed hash of their
first sentence, so train and dev never share an article.

It then runs run_finetuning.py --task=squad (the reference's joint QA head and beam decoding,
electra_tf/finetune/squad/model.py) from the given pre-training model_dir and prints the dev
EM/F1 (and HasAns/NoAns) with the wall time.

    python bench/squad_end_to_end.py --pretrained_dir=demo_out/pretrain --output_dir=/tmp/squad
"""

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFINITION = re.compile(r"^(?P<subject>[A-Z][^,()]{2,60}?) (?P<verb>is|was|are|were) "
                        r"(?P<answer>[^,;:()]{3,120}?)[,;.]")


def documents(corpus: str):
    """Lists of sentences, one per article (blank lines separate articles)."""
    with open(corpus, encoding="utf-8") as f:
        for block in f.read().split("\n\n"):
            sentences = [line for line in block.splitlines() if line.strip()]
            if sentences:
                yield sentences


def build_sample(corpus: str, seed: int, max_train: int, max_sentences: int = 4) -> dict:
    """{"train": [...], "dev": [...]} lists of (qid, context, question, answer text or None)."""
    rng = random.Random(seed)
    articles = []
    for sentences in documents(corpus):
        match = DEFINITION.match(sentences[0])
        # An answer ending in an initial ("directed by D.") was cut at the initial's period.
        if (match and len(match.group("answer").split()) <= 15
                and not re.search(r"\b[A-Z]$", match.group("answer"))):
            articles.append((" ".join(sentences[:max_sentences]), match))
    splits = {"train": [], "dev": []}
    for index, (context, match) in enumerate(articles):
        split = "dev" if hashlib.sha256(context.encode()).digest()[0] < 26 else "train"
        question = f"What {match.group('verb')} {match.group('subject')}?"
        if rng.random() < 0.25:
            other = articles[rng.randrange(len(articles))][0]
            if other != context:
                splits[split].append((f"q{index}", other, question, None))
                continue
        splits[split].append((f"q{index}", context, question, match))
    splits["train"] = splits["train"][:max_train]
    return splits


def write_squad_json(path: str, items: list) -> None:
    paragraphs = []
    for qid, context, question, match in items:
        qa = {"id": qid, "question": question, "is_impossible": match is None, "answers": []}
        if match is not None:
            qa["answers"] = [{"text": match.group("answer"), "answer_start": match.start("answer")}]
        paragraphs.append({"context": context, "qas": [qa]})
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"version": "v2.0", "data": [{"title": "wiki", "paragraphs": paragraphs}]}, f)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained_dir", required=True, help="Pre-training model_dir.")
    parser.add_argument("--output_dir", required=True, help="Receives the sample and the run.")
    parser.add_argument("--corpus", default=os.path.join(REPO, ".cache/demo_data/wiki/"
                                                         "summaries_en-us.txt"))
    parser.add_argument("--vocab_file", default=os.path.join(REPO, ".cache/demo_data/vocab/"
                                                             "vocab.txt"))
    parser.add_argument("--max_train_questions", type=int, default=2000)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--doc_stride", type=int, default=64)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.makedirs(args.output_dir, exist_ok=True)
    splits = build_sample(args.corpus, args.seed, args.max_train_questions)
    files = {}
    for split, items in splits.items():
        files[split] = os.path.join(args.output_dir, f"{split}-v2.0.json")
        write_squad_json(files[split], items)
        unanswerable = sum(match is None for *_, match in items)
        print(f"{split}: {len(items):,} questions ({unanswerable:,} unanswerable) -> "
              f"{files[split]}", flush=True)
    model_dir = os.path.join(args.output_dir, "model")
    began = time.monotonic()
    subprocess.run([sys.executable, os.path.join(REPO, "run_finetuning.py"), "--task=squad",
                    f"--train_file={files['train']}", f"--dev_file={files['dev']}",
                    f"--vocab_file={args.vocab_file}", f"--init_checkpoint={args.pretrained_dir}",
                    f"--model_dir={model_dir}", f"--max_seq_length={args.max_seq_length}",
                    f"--doc_stride={args.doc_stride}", f"--num_train_epochs={args.epochs}",
                    f"--learning_rate={args.learning_rate}", f"--seed={args.seed}"],
                   check=True)
    seconds = time.monotonic() - began
    with open(os.path.join(model_dir, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    print(json.dumps(results, indent=1)[:3000])
    print(f"fine-tuning + evaluation took {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
