"""The variables of the ELECTRA towers and heads carry the TF1 checkpoint names of docs/RECIPE.md
(interop and layer-wise learning-rate decay match on them)."""

from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.heads import DenseHead
from electra_tf.pretraining.objective import ElectraPretrainer
from tests.electra_tf.modeling.tiny import CLS, MASK, SEP, tiny_config, tiny_objective


def expected_tower(scope, vocab, emb, hidden, layers, ffn, positions, with_embeddings):
    """The recipe's "Checkpoint variable names" list for one tower, written out by hand."""
    names = {}
    if with_embeddings:
        names.update({
            "electra/embeddings/word_embeddings": (vocab, emb),
            "electra/embeddings/position_embeddings": (positions, emb),
            "electra/embeddings/token_type_embeddings": (2, emb),
            "electra/embeddings/LayerNorm/gamma": (emb,),
            "electra/embeddings/LayerNorm/beta": (emb,),
        })
    if emb != hidden:
        names[f"{scope}/embeddings_project/kernel"] = (emb, hidden)
        names[f"{scope}/embeddings_project/bias"] = (hidden,)
    for i in range(layers):
        p = f"{scope}/encoder/layer_{i}"
        for part in ("query", "key", "value"):
            names[f"{p}/attention/self/{part}/kernel"] = (hidden, hidden)
            names[f"{p}/attention/self/{part}/bias"] = (hidden,)
        names[f"{p}/attention/output/dense/kernel"] = (hidden, hidden)
        names[f"{p}/attention/output/dense/bias"] = (hidden,)
        names[f"{p}/intermediate/dense/kernel"] = (hidden, ffn)
        names[f"{p}/intermediate/dense/bias"] = (ffn,)
        names[f"{p}/output/dense/kernel"] = (ffn, hidden)
        names[f"{p}/output/dense/bias"] = (hidden,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            names[f"{p}/{norm}/gamma"] = (hidden,)
            names[f"{p}/{norm}/beta"] = (hidden,)
    return names


def name_table(variables):
    table = {v.path: tuple(v.shape) for v in variables}
    assert len(table) == len(variables), "two variables share a path"
    return table


def test_pretrainer_variables_are_exactly_the_tf1_checkpoint_names():
    # E=16, H=32, generator 8 wide with 1 head: both towers project, the generator FFN is 32.
    config = tiny_config()
    model = ElectraPretrainer(config, tiny_objective(), seed=0, mask_id=MASK, cls_id=CLS,
                              sep_id=SEP)
    expected = expected_tower("electra", 97, 16, 32, 2, 64, 40, with_embeddings=True)
    expected.update(expected_tower("generator", 97, 16, 8, 2, 32, 40, with_embeddings=False))
    expected.update({
        "generator_predictions/dense/kernel": (8, 16),
        "generator_predictions/dense/bias": (16,),
        "generator_predictions/LayerNorm/gamma": (16,),
        "generator_predictions/LayerNorm/beta": (16,),
        "generator_predictions/output_bias": (97,),
        "discriminator_predictions/dense/kernel": (32, 32),
        "discriminator_predictions/dense/bias": (32,),
        "discriminator_predictions/dense_1/kernel": (32, 1),
        "discriminator_predictions/dense_1/bias": (1,),
    })
    assert name_table(model.trainable_variables) == expected
    assert name_table(model.variables) == expected
    # One shared embeddings block, not a copy per tower.
    assert model.generator.embeddings is model.discriminator.embeddings is model.embeddings
    assert model.generator.encoder.layers[0].query.kernel.path.startswith("generator/")


def test_backbone_without_projection_and_fine_tuning_heads():
    config = tiny_config(embedding_size=32)
    backbone = Backbone(config)
    expected = expected_tower("electra", 97, 32, 32, 2, 64, 40, with_embeddings=True)
    assert name_table(backbone.variables) == expected
    assert backbone.embeddings_project is None
    heads = [DenseHead(config, 3, "classifier"), DenseHead(config, 5, "tagger", per_token=True)]
    assert name_table([v for head in heads for v in head.variables]) == {
        "classifier/dense/kernel": (32, 3), "classifier/dense/bias": (3,),
        "tagger/dense/kernel": (32, 5), "tagger/dense/bias": (5,),
    }
