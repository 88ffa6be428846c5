"""Small SQuAD-format data for the QA tests: a vocabulary that covers it, and the JSON file."""

import json
import re
import unicodedata

CONTEXTS = [
    # Longer than one window at the tests' max_seq_length.
    "Zürich is the largest city in Switzerland and the capital of the canton of Zürich. "
    "It is located in north central Switzerland, at the northwestern tip of Lake Zürich. "
    "The city was founded by the Romans, who called it Turicum, in 15 BC. "
    "Its unaffable mayor opened the Kunsthaus museum in 1910, near the old town.",
    "Peter visited Paris in 1990s, a café named “Le Zinc” — and met Anna there.",
]
QUESTIONS = [
    ("q1", 0, "What did the Romans call Zürich?", "Turicum"),
    ("q2", 0, "When did the mayor open the museum?", "1910"),
    ("q3", 0, "Which lake is Zürich at?", "Lake Zürich"),
    ("q4", 1, "Which café did Peter visit?", "Le Zinc"),
    ("q5", 1, "Who met Anna?", "Peter"),
    ("q6", 1, "What is the capital of Mars?", None),  # unanswerable
]
# Words kept out of the vocabulary so they split into several pieces.
SPLIT = {"unaffable": ["un", "##aff", "##able"], "kunsthaus": ["kunst", "##haus"],
         "1990s": ["1990", "##s"]}


def _words(text: str) -> list:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return re.findall(r"\w+|[^\w\s]", text)


def vocab() -> list:
    words = set()
    for text in CONTEXTS + [q for _, _, q, _ in QUESTIONS]:
        words.update(_words(text))
    pieces = {p for parts in SPLIT.values() for p in parts}
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            + sorted((words - set(SPLIT)) | pieces))


def squad_file(path, questions=QUESTIONS, contexts=CONTEXTS) -> str:
    paragraphs = []
    for c, context in enumerate(contexts):
        qas = []
        for qid, index, question, answer in questions:
            if index != c:
                continue
            if answer is None:
                qas.append({"id": qid, "question": question, "answers": [],
                            "is_impossible": True})
            else:
                qas.append({"id": qid, "question": question, "is_impossible": False,
                            "answers": [{"text": answer,
                                         "answer_start": context.rindex(answer)}]})
        paragraphs.append({"context": context, "qas": qas})
    path.write_text(json.dumps({"version": "v2.0", "data": [
        {"title": "Test", "paragraphs": paragraphs}]}, ensure_ascii=False), encoding="utf-8")
    return str(path)
