"""Reading SQuAD JSON files and TFDS squad (mock data), and their bad-input reports."""

import json

import pytest

from electra_tf.cli import UserError
from electra_tf.finetune.squad import reader as squad


def squad_json(paragraphs, title="T"):
    return {"version": "v2.0", "data": [{"title": title, "paragraphs": paragraphs}]}


def write(tmp_path, obj, name="data.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False),
                    encoding="utf-8")
    return str(path)


CONTEXT = "Zürich is the largest city in Switzerland. Its lake is Lake Zürich."


def test_reads_answers_unanswerable_and_non_ascii(tmp_path):
    start = CONTEXT.index("Lake Zürich")
    path = write(tmp_path, squad_json([{"context": CONTEXT, "qas": [
        {"id": "a", "question": "Which lake?", "answers": [
            {"text": "Lake Zürich", "answer_start": start},
            {"text": "Zürich", "answer_start": start + 5}]},
        {"id": "b", "question": "Population of Mars?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Zürich", "answer_start": 0}]},
    ]}]))
    examples, stats = squad.read_squad_json(path, version=2)
    assert [e.qas_id for e in examples] == ["a", "b"]
    a, b = examples
    assert a.answer_texts == ["Lake Zürich", "Zürich"]
    assert a.train_answer == (start, start + len("Lake Zürich"))
    assert CONTEXT[slice(*a.train_answer)] == "Lake Zürich"
    assert b.is_impossible and b.answer_texts == [] and b.train_answer is None
    assert stats.questions == 2 and stats.unanswerable == 1 and stats.bad_offsets == 0


def test_bad_offsets_are_counted_not_fatal(tmp_path):
    path = write(tmp_path, squad_json([{"context": CONTEXT, "qas": [
        {"id": "a", "question": "City?", "answers": [{"text": "Zürich", "answer_start": 3}]},
        {"id": "b", "question": "Country?", "answers": [
            {"text": "Switzerland", "answer_start": 0},
            {"text": "Switzerland", "answer_start": CONTEXT.index("Switzerland")}]},
    ]}]))
    examples, stats = squad.read_squad_json(path, version=1)
    assert stats.bad_offsets == 2
    assert "'a'" in stats.first_bad_offset
    assert "2 answers whose answer_start does not match" in stats.report()
    a, b = examples
    # Kept for evaluation; no training target unless another answer's offset is right.
    assert a.answer_texts == ["Zürich"] and a.train_answer is None
    assert CONTEXT[slice(*b.train_answer)] == "Switzerland"


@pytest.mark.parametrize("text, message", [
    ('{"data": [', "not valid JSON: Expecting value at line 1 column 11"),
    ('{"data": {}}', "top level.data: expected list, got dict"),
    ('{"data": [{"paragraphs": [{"qas": []}]}]}', "data[0].paragraphs[0]: missing 'context'"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q1"}]}]}]}',
     "data[0].paragraphs[0].qas[0]: missing 'question'"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q", "question": "?", '
     '"answers": [{"text": "x", "answer_start": "0"}]}]}]}]}',
     "qas[0].answers[0].answer_start: expected int, got str"),
    ('{"data": [{"paragraphs": [{"context": " ", "qas": [{"id": "q9", "question": "?"}]}]}]}',
     "question 'q9' has an empty context"),
    ('{"data": []}', "no questions"),
])
def test_malformed_files_name_file_and_first_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as error:
        squad.read_squad_json(path, version=2)
    assert str(error.value).startswith(path + ": ")
    assert message in str(error.value)


def test_missing_file_and_v2_data_for_v1_task(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        squad.read_squad_json(str(tmp_path / "nope.json"), version=1)
    path = write(tmp_path, squad_json([{"context": CONTEXT, "qas": [
        {"id": "b", "question": "?", "answers": [], "is_impossible": True}]}]))
    with pytest.raises(UserError, match="use --task=squad instead"):
        squad.read_squad_json(path, version=1)


@pytest.mark.parametrize("version", [1, 2])
def test_tfds_mock_data(version):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        examples, stats = squad.read_squad_tfds("validation", version)
    assert len(examples) == 6 == stats.questions
    for example in examples:
        assert example.context and isinstance(example.question, str)
        # Mock offsets are random: each is either right (a training target) or counted.
        for text, start in zip(example.answer_texts, example.answer_starts):
            assert start is None or example.context[start:start + len(text)] == text
    assert stats.source == f"tfds:{squad.TFDS_NAMES[version]}:validation"
