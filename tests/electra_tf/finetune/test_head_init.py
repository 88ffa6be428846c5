"""Task heads are initialized as the reference's TF1 `tf.layers.dense`: glorot-uniform kernel
(uniform in +-sqrt(6 / (fan_in + fan_out))), zero bias; the encoder keeps truncated normal."""

import math

import keras
import numpy as np
import pytest

from electra_tf.finetune.model import SequenceModel, TaggingModel
from electra_tf.finetune.squad.model import SpanModel
from tests.electra_tf.finetune.helpers import tiny_config


def _dense_layers(model):
    if isinstance(model, SpanModel):
        head = model.head
        return [head.start, head.qa_hidden, head.end, head.answerable_hidden, head.answerable]
    return [model.head.dense]


@pytest.mark.parametrize("build", [lambda c: SequenceModel(c, 3),
                                   lambda c: SequenceModel(c, 1, regression=True),
                                   lambda c: TaggingModel(c, 5), lambda c: SpanModel(c)])
def test_task_heads_are_glorot_uniform_with_zero_bias(build):
    keras.utils.set_random_seed(0)
    config = tiny_config(hidden_size=64, intermediate_size=64, initializer_range=0.02)
    model = build(config)
    for layer in _dense_layers(model):
        kernel = layer.kernel.numpy()
        fan_in, fan_out = kernel.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        # Truncated normal 0.02 never leaves +-0.04; glorot's spread is the uniform's.
        assert np.abs(kernel).max() > 0.5 * limit > 0.04
        assert np.std(kernel) == pytest.approx(limit / math.sqrt(3), rel=0.35)
        assert not layer.bias.numpy().any()
    # The encoder is the pre-trained part: still the recipe's truncated normal.
    query = next(v for v in model.backbone.weights if "query/kernel" in v.path).numpy()
    assert np.abs(query).max() <= 0.04 + 1e-6
