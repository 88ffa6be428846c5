"""An independent NumPy forward pass of ELECTRA, written from the recipe's equations.

It reads weights by their TF1 checkpoint names only (no project code), in float64, and computes
what the reference computes: BERT embeddings + LayerNorm (eps 1e-12), optional embeddings_project,
post-LayerNorm transformer layers (exact-erf GELU, -10000 mask adder, heads of equal width), the
discriminator head dense(H, gelu) -> dense_1(1) and the generator head dense(E, gelu) ->
LayerNorm -> word_embeddings^T + output_bias. Used as the oracle of the checkpoint and export tests.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _dense(w, prefix, x):
    return x @ w[f"{prefix}/kernel"] + w[f"{prefix}/bias"]


def embeddings(w, input_ids, segment_ids):
    e = "electra/embeddings"
    length = input_ids.shape[1]
    x = (w[f"{e}/word_embeddings"][input_ids] + w[f"{e}/token_type_embeddings"][segment_ids]
         + w[f"{e}/position_embeddings"][:length][None])
    return layer_norm(x, w[f"{e}/LayerNorm/gamma"], w[f"{e}/LayerNorm/beta"])


def tower(w, scope, input_ids, input_mask, segment_ids, num_heads):
    """sequence_output of the tower `scope` ("electra" or "generator")."""
    x = embeddings(w, input_ids, segment_ids)
    if f"{scope}/embeddings_project/kernel" in w:
        x = _dense(w, f"{scope}/embeddings_project", x)
    adder = (1.0 - input_mask[:, None, None, :]) * -10000.0
    i = 0
    while f"{scope}/encoder/layer_{i}/attention/self/query/kernel" in w:
        p = f"{scope}/encoder/layer_{i}"
        batch, length, hidden = x.shape
        size = hidden // num_heads

        q, k, v = (_dense(w, f"{p}/attention/self/{name}", x)
                   .reshape(batch, length, num_heads, size).transpose(0, 2, 1, 3)
                   for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + adder
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = layer_norm(_dense(w, f"{p}/attention/output/dense", context) + x,
                              w[f"{p}/attention/output/LayerNorm/gamma"],
                              w[f"{p}/attention/output/LayerNorm/beta"])
        inner = gelu(_dense(w, f"{p}/intermediate/dense", attended))
        x = layer_norm(_dense(w, f"{p}/output/dense", inner) + attended,
                       w[f"{p}/output/LayerNorm/gamma"], w[f"{p}/output/LayerNorm/beta"])
        i += 1
    return x


def discriminator_logits(w, input_ids, input_mask, segment_ids, num_heads):
    seq = tower(w, "electra", input_ids, input_mask, segment_ids, num_heads)
    hidden = gelu(_dense(w, "discriminator_predictions/dense", seq))
    return _dense(w, "discriminator_predictions/dense_1", hidden)[..., 0]


def generator_logits(w, input_ids, input_mask, segment_ids, num_heads):
    """Vocabulary logits at every position [B, T, V]."""
    seq = tower(w, "generator", input_ids, input_mask, segment_ids, num_heads)
    hidden = gelu(_dense(w, "generator_predictions/dense", seq))
    hidden = layer_norm(hidden, w["generator_predictions/LayerNorm/gamma"],
                        w["generator_predictions/LayerNorm/beta"])
    return (hidden @ w["electra/embeddings/word_embeddings"].T
            + w["generator_predictions/output_bias"])


def random_weights(shapes, seed):
    """Random values for a name -> shape table, scaled so activations stay O(1) (the recipe's
    0.02 init would make every logit nearly 0 and the comparison meaningless)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in sorted(shapes.items()):
        if name.endswith("gamma"):
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith(("beta", "bias")):
            value = 0.2 * rng.standard_normal(shape)
        elif name.endswith("kernel"):
            value = rng.standard_normal(shape) / math.sqrt(shape[0])
        else:  # embedding tables; 0.5 keeps the tied generator logits within about +-8
            value = 0.5 * rng.standard_normal(shape)
        weights[name] = value.astype(np.float32)
    return weights
