"""SavedModel export: layout, signatures (saved_model_cli show/run), parity of a fresh
TensorFlow-only process with the in-process Keras model, the gRPC client's request, the
generator and fine-tuned heads, and bad input at export and serving time."""

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoint_io, tokenization
from electra_tf.checkpoint_io import tf1 as tf1_checkpoint
from electra_tf.cli import UserError
from electra_tf.config import ModelConfig
from electra_tf.export import saved_model
from electra_tf.finetune import features as features_lib
from electra_tf.finetune.model import SequenceModel, TaggingModel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
WORDS = ("the chef cooked ate meal dog cat sat on mat is was and to of in it good bad movie "
         "film great . , ! ? ' [ ] ##s ##ed ##ing").split()
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + list("bcdefghjklmnpqrsuvwxyz")
         + ["##" + c for c in "abcdefghijklmnopqrtuvwxyz"])
MAX_SEQ = 16
CONFIG = ModelConfig(vocab_size=len(VOCAB), embedding_size=16, hidden_size=32,
                     num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=32, generator_hidden_size=0.5)
LONG_TEXT = "the dog sat on the mat . " * 2000
TEXTS = ["The chef ate the meal!", "", LONG_TEXT, "caf\u00e9 dog"]
INVALID_UTF8 = b"the \xff\xfe dog \xc3"
PAIR_A, PAIR_B = ["the dog sat", "good movie"], ["on the mat", LONG_TEXT]


def _randomize(model, seed):
    """Weights of O(1) spread, so outputs differ clearly between tokens."""
    rng = np.random.default_rng(seed)
    for v in model.variables:
        v.assign(0.3 * rng.standard_normal(v.shape).astype(np.float32))


def _save_ours(model, directory, config, task=None):
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 1).save(0)
    config.save(os.path.join(directory, "config.json"))
    if task:
        with open(os.path.join(directory, "finetune_task.json"), "w") as f:
            json.dump(task, f)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    pretrainer = checkpoint_io.build_pretrainer(CONFIG)
    _randomize(pretrainer, 0)
    _save_ours(pretrainer, str(root / "model"), CONFIG)
    path = saved_model.export_saved_model(str(root / "model"), str(vocab), str(root / "serving"),
                                          max_seq_length=MAX_SEQ)
    loaded = checkpoint_io.open_checkpoint(str(root / "model"))
    return {"root": root, "vocab": str(vocab), "path": path, "model": loaded.model,
            "tokenizer": tokenization.Tokenizer(str(vocab))}


def _features(tokenizer, texts, texts_b=None):
    ids_b = tokenizer.tokenize(tf.constant(texts_b)) if texts_b else None
    features = tokenization.pack_segments(tokenizer.tokenize(tf.constant(texts)), ids_b, MAX_SEQ,
                                          tokenizer.cls_id, tokenizer.sep_id)
    length = int(tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1)))
    return {name: value[:, :length] for name, value in features.items()}


def _keras_replaced(model, features):
    """The in-process Keras model: discriminator + head, sigmoid, zero at padding."""
    logits = model.discriminator_head(model.discriminator(features))
    return tf.sigmoid(logits).numpy() * features["input_mask"].numpy()


def _tokens(features):
    return [[VOCAB[i] if m else "" for i, m in zip(ids, mask)]
            for ids, mask in zip(features["input_ids"].numpy(), features["input_mask"].numpy())]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def test_layout_version_dir_asset_and_no_build_paths(work):
    path = work["path"]
    assert path == str(work["root"] / "serving" / "1")
    assert sorted(os.listdir(work["root"] / "serving")) == ["1"]
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask  # readable by a server user
    with open(os.path.join(path, "assets", "vocab.txt")) as f:
        assert f.read().split() == VOCAB
    needles = {str(work["root"]).encode(), REPO.encode(), os.path.abspath(work["vocab"]).encode()}
    for directory, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
            for needle in needles:
                assert needle not in data, f"{needle!r} inside {name}"


SAVED_MODEL_CLI_WITH_TEXT_OPS = ("import sys, tensorflow_text; "
                                 "from tensorflow.python.tools import saved_model_cli; "
                                 "sys.argv[0] = 'saved_model_cli'; saved_model_cli.main()")


def test_saved_model_cli_shows_and_runs_the_signatures(work):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", work["path"], "--all"], env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for expected in ("signature_def['serving_default']", "inputs['text'] tensor_info",
                     "inputs['text_b'] tensor_info", "outputs['tokens'] tensor_info",
                     "outputs['replaced_probability'] tensor_info",
                     "signature_def['encode']", "signature_def['encode_int64']",
                     "outputs['sequence_output'] tensor_info", "outputs['cls'] tensor_info"):
        assert expected in out, expected
    serving = out.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "dtype: DT_STRING" in serving and "dtype: DT_FLOAT" in serving
    encode64 = out.split("signature_def['encode_int64']")[1].split("signature_def[")[0]
    assert "dtype: DT_INT64" in encode64 and "shape: (-1, -1)" in encode64
    # `run` executes the graph, so the tensorflow-text ops must be registered first (the same
    # command line as docs/SERVING.md gives).
    ran = subprocess.run([sys.executable, "-c", SAVED_MODEL_CLI_WITH_TEXT_OPS, "run",
                          "--dir", work["path"], "--tag_set", "serve",
                          "--signature_def", "serving_default",
                          "--input_exprs", 'text=["the chef ate the meal"]'],
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "Result for output key tokens" in ran.stdout and "[CLS]" in ran.stdout
    assert "Result for output key replaced_probability" in ran.stdout


FRESH_SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
path, inputs, out = sys.argv[1:]
given = np.load(inputs, allow_pickle=True)
loaded = tf.saved_model.load(path)
serve = loaded.signatures["serving_default"]
results = {}
def keep(prefix, outputs):
    for name, value in outputs.items():
        results[f"{prefix}/{name}"] = value.numpy()
keep("single", serve(text=tf.constant(list(given["texts"])), text_b=tf.constant([], tf.string)))
keep("pairs", serve(text=tf.constant(list(given["pair_a"])),
                    text_b=tf.constant(list(given["pair_b"]))))
keep("default", loaded.serve(tf.constant(list(given["texts"]))))
keep("invalid", serve(text=tf.constant([given["invalid"].item()]),
                      text_b=tf.constant([], tf.string)))
features = {k: tf.constant(given[k]) for k in ("input_ids", "input_mask", "segment_ids")}
keep("encode", loaded.signatures["encode"](**features))
keep("encode64", loaded.signatures["encode_int64"](
    **{k: tf.cast(v, tf.int64) for k, v in features.items()}))
results["project_modules"] = np.array(sorted(m for m in sys.modules
                                             if m.split(".")[0] in ("electra_tf", "data_prep")))
np.savez(out, **results)
"""


def test_fresh_tensorflow_process_matches_keras(work, tmp_path):
    model, tokenizer = work["model"], work["tokenizer"]
    single = _features(tokenizer, TEXTS)
    pairs = _features(tokenizer, PAIR_A, PAIR_B)
    np.savez(tmp_path / "in.npz", texts=np.array(TEXTS, object), pair_a=np.array(PAIR_A, object),
             pair_b=np.array(PAIR_B, object), invalid=np.array(INVALID_UTF8, object),
             **{k: v.numpy() for k, v in single.items()})
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_SCRIPT)
    run = subprocess.run([sys.executable, str(script), work["path"], str(tmp_path / "in.npz"),
                          str(tmp_path / "out.npz")], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(tmp_path / "out.npz", allow_pickle=True)
    assert list(got["project_modules"]) == []
    for prefix, features in (("single", single), ("pairs", pairs), ("default", single)):
        want = _keras_replaced(model, features)
        assert got[f"{prefix}/replaced_probability"].shape == want.shape
        diff = np.abs(got[f"{prefix}/replaced_probability"] - want).max()
        print(f"{prefix}: SavedModel vs Keras replaced_probability max |diff| {diff:.2e}")
        assert diff <= 1e-5
        tokens = [[t.decode() for t in row] for row in got[f"{prefix}/tokens"]]
        assert tokens == _tokens(features)
    # Empty text is [CLS] [SEP]; long text is cut at max_seq_length; pairs put B in segment 1.
    assert _tokens(single)[1][:3] == ["[CLS]", "[SEP]", ""]
    assert _tokens(single)[2][-1] == "[SEP]" and len(_tokens(single)[2]) == MAX_SEQ
    assert _tokens(pairs)[1].count("[SEP]") == 2
    invalid = [t.decode() for t in got["invalid/tokens"][0]]
    assert invalid == ["[CLS]", "the", "dog", "[SEP]"]
    sequence = model.discriminator(single).numpy()
    for prefix in ("encode", "encode64"):
        assert np.abs(got[f"{prefix}/sequence_output"] - sequence).max() <= 1e-5
        assert np.abs(got[f"{prefix}/cls"] - sequence[:, 0]).max() <= 1e-5


def _load_client():
    spec = importlib.util.spec_from_file_location(
        "serving_client", os.path.join(REPO, "examples", "serving_client.py"))
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    return client


def test_grpc_request_fits_the_signature(work):
    from tensorflow.core.protobuf import saved_model_pb2
    client = _load_client()
    request = client.build_request(["the dog sat", "good film"], ["on the mat", "!"])
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(work["path"], "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    signature = proto.meta_graphs[0].signature_def[request.model_spec.signature_name]
    assert set(request.inputs) == set(signature.inputs)
    for name, tensor in request.inputs.items():
        assert tensor.dtype == signature.inputs[name].dtype
        assert len(tensor.tensor_shape.dim) == len(signature.inputs[name].tensor_shape.dim)
    # The request's tensors are accepted by the signature as they are.
    served = tf.saved_model.load(work["path"])
    outputs = served.signatures["serving_default"](
        **{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    assert outputs["tokens"].shape[0] == 2
    body = json.loads(client.rest_body(["the dog sat"]))
    assert body == {"signature_name": "serving_default", "inputs": {"text": ["the dog sat"]}}
    single = client.build_request(["the dog sat"])
    assert set(single.inputs) == set(signature.inputs) - set(signature.defaults)


def test_generator_head_fills_masks_and_overwrite_replaces_the_version(work, tmp_path):
    export_dir = tmp_path / "serving"
    shutil.copytree(work["root"] / "serving", export_dir)
    with pytest.raises(UserError, match="--overwrite"):
        saved_model.export_saved_model(str(work["root"] / "model"), work["vocab"],
                                       str(export_dir), head="generator", version=1)
    path = saved_model.export_saved_model(str(work["root"] / "model"), work["vocab"],
                                          str(export_dir), head="generator", version=1,
                                          overwrite=True, top_k=3, max_seq_length=MAX_SEQ)
    assert sorted(os.listdir(export_dir)) == ["1"]
    served = tf.saved_model.load(path)
    outputs = served.serve(tf.constant(["the [MASK] ate the meal [MASK]", "the dog"]))
    masked = outputs["masked"].numpy()
    assert masked[0].tolist()[:8] == [False, False, True, False, False, False, True, False]
    assert not masked[1].any()
    # Compare with the in-process generator at the masked positions.
    model, tokenizer = work["model"], work["tokenizer"]
    ids = [[tokenizer.cls_id, VOCAB.index("the"), tokenizer.mask_id, VOCAB.index("ate"),
            VOCAB.index("the"), VOCAB.index("meal"), tokenizer.mask_id, tokenizer.sep_id]]
    features = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(tf.constant(ids)),
                "segment_ids": tf.zeros_like(tf.constant(ids))}
    logits = model.generator_head(model.generator(features), model.embeddings.word_embeddings)
    probs = tf.nn.softmax(logits, -1).numpy()[0]
    for position in (2, 6):
        best = np.argsort(-probs[position])[:3]
        got_tokens = [t.decode() for t in outputs["top_k_tokens"].numpy()[0, position]]
        assert got_tokens == [VOCAB[i] for i in best]
        np.testing.assert_allclose(outputs["top_k_probabilities"].numpy()[0, position],
                                   probs[position][best], atol=1e-5)
        assert outputs["tokens"].numpy()[0, position].decode() == VOCAB[best[0]]
    assert (outputs["top_k_tokens"].numpy()[1] == b"").all()


@pytest.mark.parametrize("kind, labels", [("classification", ["fresh", "rotten", "meh"]),
                                          ("regression", None)])
def test_fine_tuned_models_serve_labels_or_scores(work, tmp_path, kind, labels):
    model = SequenceModel(CONFIG, num_labels=len(labels or [0]),
                          regression=kind == "regression")
    _randomize(model, 1)
    _save_ours(model, str(tmp_path), CONFIG, {"task": "t", "kind": kind, "labels": labels})
    loaded = checkpoint_io.open_checkpoint(str(tmp_path))
    module = saved_model.build_serving_module(loaded, work["vocab"], max_seq_length=MAX_SEQ)
    texts = ["good movie", "bad film !"]
    outputs = module.serve(tf.constant(texts))
    want = model(_features(work["tokenizer"], texts), training=False)
    if kind == "regression":
        np.testing.assert_allclose(outputs["score"], want["predictions"], atol=1e-5)
        return
    np.testing.assert_allclose(outputs["probabilities"], want["probabilities"], atol=1e-5)
    assert [b.decode() for b in outputs["label"].numpy()] == [
        labels[i] for i in np.argmax(want["probabilities"], -1)]
    with pytest.raises(UserError, match="--head=generator"):
        saved_model.build_serving_module(loaded, work["vocab"], head="generator")


def test_tagging_model_serves_one_tag_per_word_like_fine_tuning(work, tmp_path):
    labels = ["B-X", "O", "I-X"]
    model = TaggingModel(CONFIG, num_labels=len(labels))
    _randomize(model, 2)
    _save_ours(model, str(tmp_path / "model"), CONFIG,
               {"task": "tagging", "kind": "tagging", "labels": labels, "max_seq_length": 12})
    assert checkpoint_io.open_checkpoint(str(tmp_path / "model")).head == "tagger"
    path = saved_model.export_saved_model(str(tmp_path / "model"), work["vocab"],
                                          str(tmp_path / "serving"))
    serve = tf.saved_model.load(path).signatures["serving_default"]
    # Non-ASCII, a word without WordPieces (a control character: one [UNK] slot), words past
    # the 12-piece length (fallback tag "O", probability 0), and an empty text.
    texts = ["The chef cooked the meal !", "caf\u00e9 \x01 dog", "", "the dog sat on the mat . "
             "the cat ate the meal and was good"]
    out = serve(text=tf.constant(texts))
    sentences = [text.split() for text in texts]
    arrays, positions = features_lib.encode_words(work["tokenizer"], sentences,
                                                  [None] * len(texts), 12)
    probabilities = model({k: tf.constant(arrays[k]) for k in ("input_ids", "input_mask",
                                                                "segment_ids")})["probabilities"]
    for i, (words, places) in enumerate(zip(sentences, positions)):
        assert [w.decode() for w in out["tokens"].numpy()[i][:len(words)]] == words
        assert (out["tokens"].numpy()[i][len(words):] == b"").all()
        want = [labels[int(np.argmax(probabilities[i, p]))] if p >= 0 else "O" for p in places]
        assert [t.decode() for t in out["tags"].numpy()[i][:len(words)]] == want
        want_p = [float(np.max(probabilities[i, p])) if p >= 0 else 0.0 for p in places]
        np.testing.assert_allclose(out["tag_probability"].numpy()[i][:len(words)], want_p,
                                   atol=1e-5)
    assert -1 in positions[3] and positions[3][0] == 1


def test_tf1_checkpoint_exports_directly(work, tmp_path):
    values = tf1_checkpoint.model_tf1_values(work["model"])
    prefix = tf1_checkpoint.write_tf1_checkpoint(values, str(tmp_path))
    loaded = checkpoint_io.open_checkpoint(prefix)
    assert loaded.head == "discriminator"
    got = tf1_checkpoint.model_tf1_values(loaded.model)
    assert all(np.array_equal(got[name], value) for name, value in values.items())


def test_bad_export_input_is_a_user_error(work, tmp_path):
    for path in (str(tmp_path / "nothing"), str(tmp_path)):
        with pytest.raises(UserError, match="--checkpoint"):
            checkpoint_io.open_checkpoint(path)
    model_dir = tmp_path / "no_config"
    tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), str(model_dir), 1).save()
    with pytest.raises(UserError, match="config.json"):
        checkpoint_io.open_checkpoint(str(model_dir))
    loaded = checkpoint_io.Opened(CONFIG, work["model"], "test")
    bigger = tmp_path / "vocab.txt"
    bigger.write_text("\n".join(VOCAB + ["extra"]) + "\n")
    with pytest.raises(UserError, match=f"{len(VOCAB) + 1} tokens .* {len(VOCAB)} rows"):
        saved_model.build_serving_module(loaded, str(bigger))
    with pytest.raises(UserError, match="--head=classifier"):
        saved_model.build_serving_module(loaded, work["vocab"], head="classifier")
    with pytest.raises(UserError, match="--max_seq_length"):
        saved_model.build_serving_module(loaded, work["vocab"], max_seq_length=64)


def test_cli_refuses_an_existing_version_in_one_line(work):
    run = subprocess.run(
        [sys.executable, "export_saved_model.py", f"--checkpoint={work['root'] / 'model'}",
         f"--vocab_file={work['vocab']}", f"--export_dir={work['root'] / 'serving'}",
         "--version=1"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--overwrite" in last and "Traceback" not in run.stderr
