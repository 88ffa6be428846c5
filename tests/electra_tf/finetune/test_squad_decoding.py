"""The reference's QA decoding and training windows (issue 14): a small SQuAD file whose answer
lies only in the second window, whose question repeats a context word, with an unanswerable
question and non-ASCII text; the candidate filter worked by hand; the beam read back."""

import json

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.finetune.squad import features as squad_features
from electra_tf.finetune.squad import model as squad_model
from electra_tf.finetune.squad import postprocess
from electra_tf.finetune.squad import reader as squad
from electra_tf.finetune.squad import task as squad_task
from electra_tf.tokenization import Tokenizer
from tests.electra_tf.finetune import squad_fixtures
from tests.electra_tf.finetune.helpers import finetune_options, tiny_config

CONTEXT = ("Zürich is a city . It lies on a lake . Long ago the Romans came and named it "
           "Turicum .")
QUESTION = "What did the Romans call Zürich?"
# 7 question pieces in 24: room for 14 context pieces, windows every 8 pieces: the 21 context
# pieces make two windows, [0, 14) and [8, 21); "turicum" is piece 19, in the second only.
WINDOW = squad_features.WindowConfig(max_seq_length=24, doc_stride=8, max_query_length=12)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("squad_decoding")
    words = set(squad_fixtures._words(CONTEXT + " " + QUESTION + " Who rules Mars?"))
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words))
                     + "\n", encoding="utf-8")
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "second", "question": QUESTION, "is_impossible": False,
         "answers": [{"text": "Turicum", "answer_start": CONTEXT.index("Turicum")}]},
        {"id": "none", "question": "Who rules Mars?", "is_impossible": True, "answers": []},
    ]}]}]}
    path = directory / "dev.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(vocab), str(path)


def featurized(files, version=2):
    vocab, path = files
    options = finetune_options(task="squad", vocab_file=vocab, train_file=path, model_dir="x",
                               max_seq_length=24, doc_stride=8, max_query_length=12)
    task = squad_task.SquadTask("squad", version, options)
    examples = squad.read_squad_json(path, version=2)[0]
    return task, Tokenizer(vocab), task.featurize(examples, Tokenizer(vocab), 24)


def test_every_window_trains_toward_the_answer_or_cls(files):
    _, tokenizer, features = featurized(files)
    arrays = features.arrays
    # Two windows per question, none dropped.
    assert features.examples == ["second", "second", "none", "none"]
    assert arrays["span_weight"].tolist() == [1, 1, 1, 1]
    # The first window of "second" lacks the answer: [CLS] (0, 0); the second holds it at
    # [CLS] + 7 question pieces + [SEP] + (19 - 8) = position 20.
    assert arrays["start_positions"].tolist() == [0, 20, 0, 0]
    assert arrays["end_positions"].tolist() == [0, 20, 0, 0]
    assert tokenizer.id_to_token(tf.constant(arrays["input_ids"][1, 20])).numpy() == b"turicum"
    # The answerability target is the question's is_impossible, whatever the window.
    assert arrays["is_impossible"].tolist() == [0, 0, 1, 1]


def test_answer_mask_is_context_plus_cls():
    features = {"input_mask": tf.constant([[1, 1, 1, 1, 1, 1, 0]]),
                "segment_ids": tf.constant([[0, 0, 0, 1, 1, 1, 0]])}
    # [CLS] q [SEP] c c [SEP] pad: position 0 and the three segment-1 tokens.
    assert squad_model.answer_mask(features).numpy().tolist() == [[1, 0, 0, 1, 1, 1, 0]]


class _Spotlight:
    """A stand-in encoder: every token is 0 except feature 0, 10 on the WordPiece `token_id`."""

    def __init__(self, token_id, hidden):
        self.token_id, self.hidden = token_id, hidden

    def __call__(self, inputs, training=False, dropout_seed=None):
        hit = tf.cast(tf.equal(inputs["input_ids"], self.token_id), tf.float32) * 10.0
        rest = tf.zeros(tf.concat([tf.shape(hit), [self.hidden - 1]], 0))
        return tf.concat([hit[..., None], rest], axis=-1)


def test_a_question_word_is_never_an_answer(files):
    """Start logits peak on "zurich", which the question repeats: the question's copy is
    masked to -1000, so the beam's best start, and the answer, are the context's copy."""
    _, tokenizer, features = featurized(files)
    config = tiny_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=24)
    model = squad_model.SpanModel(config, version=2)
    zurich = int(tokenizer.tokenize(tf.constant(["zurich"])).flat_values[0])
    model.backbone = _Spotlight(zurich, config.hidden_size)
    kernel = np.zeros((config.hidden_size, 1), np.float32)
    kernel[0] = 1.0
    model.head.start.kernel.assign(kernel)
    inputs = {k: features.arrays[k] for k in ("input_ids", "input_mask", "segment_ids")}
    outputs = {k: v.numpy() for k, v in model(inputs, training=False).items()}
    question_position = 6  # [CLS] what did the romans call zurich
    assert features.arrays["input_ids"][0, question_position] == zurich
    start = outputs["start_top_index"][0]
    assert start[0] == 9  # the context's zurich, first context piece of window 0
    masked = outputs["start_top_log_probs"][0][start == question_position]
    assert masked.size == 0 or masked.max() < -500
    windows = features.extras["features"]
    predicted = postprocess.postprocess(features.extras["examples"], windows, outputs,
                                        version=2, n_best_size=5, max_answer_length=30)
    assert predicted.answers["second"].startswith("Zürich")
    for candidate in predicted.nbest["second"]:
        assert candidate["start"] >= 0 and CONTEXT[candidate["start"]:candidate["end"]] == \
            candidate["text"]


def test_candidates_are_dropped_by_the_reference_rules():
    # One window of 10 tokens; context at positions 4-8, tokens 4-7 in their max-context window.
    context = np.zeros((1, 10), bool)
    context[0, 4:9] = True
    max_context = context.copy()
    max_context[0, 8] = False
    starts = np.array([[0, 5, 8, 2]])
    start_lp = np.array([[-0.1, -0.5, -1.0, -2.0]], np.float32)
    ends = np.array([[[0, 5, 6, 9], [7, 4, 5, 8], [8, 6, 5, 4], [4, 5, 6, 7]]])
    end_lp = np.array([[[-0.1, -0.2, -0.3, -0.4]] * 4], np.float32)
    scores, s, e = (t.numpy() for t in postprocess.joint_candidates(
        start_lp, starts, end_lp, ends, max_context, context, max_answer_length=3))
    kept = {(int(a), int(b)): float(c) for a, b, c in zip(s[0], e[0], scores[0]) if c > -1e8}
    # start 0: [CLS], dropped; start 8: not its max-context window; start 2: a question token.
    # start 5: end 7 (3 pieces, -0.5 - 0.1), end 4 (ends before it starts) dropped, end 5
    # (-0.5 - 0.3), end 8 (4 pieces > 3) dropped.
    assert kept == pytest.approx({(5, 7): -0.6, (5, 5): -0.8})


def test_postprocess_reads_the_beam(files):
    _, _, features = featurized(files)
    windows = features.extras["features"]
    arrays = features.arrays
    count = len(arrays["input_ids"])
    k = 3
    start_index = np.tile(np.arange(k), (count, 1))
    end_index = np.tile(np.arange(k), (count, k, 1))
    start_index[1, 0] = end_index[1, 0, 0] = 20  # window 2 of "second": turicum
    outputs = {"start_top_index": start_index, "end_top_index": end_index,
               "start_top_log_probs": np.full((count, k), -1.0, np.float32),
               "end_top_log_probs": np.full((count, k, k), -2.0, np.float32),
               "impossible_logits": np.array([1.5, -0.5, 3.0, 2.0], np.float32)}
    predicted = postprocess.postprocess(features.extras["examples"], windows, outputs,
                                        version=2, n_best_size=5, max_answer_length=30)
    assert predicted.answers == {"second": "Turicum", "none": ""}
    assert predicted.nbest["second"][0]["score"] == pytest.approx(-3.0)
    # No-answer score: the lowest impossibility logit over the question's windows.
    assert predicted.na_scores == {"second": pytest.approx(-0.5), "none": pytest.approx(2.0)}
    assert predicted.final(0.0) == {"second": "Turicum", "none": ""}


def test_loss_is_the_reference_sum(files):
    """(start CE + end CE) / 2 + 0.5 * sigmoid CE, per window, from the model's own logits."""
    _, tokenizer, features = featurized(files)
    config = tiny_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=24,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tf.keras.utils.set_random_seed(3)
    model = squad_model.SpanModel(config, version=2)
    arrays = {k: tf.constant(v) for k, v in features.arrays.items()}
    outputs = model(arrays, training=True)
    sequence = model.backbone({k: arrays[k] for k in ("input_ids", "input_mask", "segment_ids")})
    mask = squad_model.answer_mask(arrays).numpy()
    start_logits = model.head.start_logits(sequence, squad_model.answer_mask(arrays)).numpy()
    total = 0.0
    for w in range(len(mask)):
        s, e = features.arrays["start_positions"][w], features.arrays["end_positions"][w]
        end_logits = model.head.end_logits(sequence[w:w + 1, s][:, None], sequence[w:w + 1],
                                           tf.constant(mask[w:w + 1])).numpy()[0, 0]

        def ce(logits, gold):
            return np.log(np.sum(np.exp(logits - logits.max()))) + logits.max() - logits[gold]

        z = float(model.head.impossible_logit(sequence[w:w + 1],
                                              tf.constant(start_logits[w:w + 1]))[0])
        y = features.arrays["is_impossible"][w]
        bce = max(z, 0) - z * y + np.log1p(np.exp(-abs(z)))
        total += (ce(start_logits[w], s) + ce(end_logits, e)) / 2 + 0.5 * bce
    loss_sum, count, _ = outputs["losses"]["loss"]
    assert float(count) == 4
    assert float(loss_sum) == pytest.approx(total, rel=1e-4)
