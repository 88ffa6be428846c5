"""The ELECTRA pre-training objective as one Keras model: masking, the generator (masked LM),
Gumbel-max sampling, the discriminator (replaced-token detection), losses and metrics.

Per step (docs/RECIPE.md "Pre-training step"): mask 15% of the real non-special tokens (85%
[MASK], 15% kept), run the generator on the masked input and its MLM head at the masked
positions, sample replacements under stop_gradient, run the discriminator on the sampled input,
and combine gen_weight * MLM loss + disc_weight * sigmoid BCE over real tokens. Generator and
discriminator share the whole embeddings block. The towers' sizes come from a `ModelConfig`,
the mask rate, loss weights and temperature from an `ObjectiveConfig`.

The model follows the training loop's contract (electra_tf/training/loop.py): losses as
(sum, count, weight) and metrics as (sum, count) per replica, so the loop divides by globally
all-reduced counts and the loss equals the single-device loss of the same global batch.
"""

import keras
import tensorflow as tf

from electra_tf.config import ModelConfig, ObjectiveConfig
from electra_tf.modeling import common
from electra_tf.modeling.backbone import Backbone
from electra_tf.modeling.embeddings import Embeddings
from electra_tf.modeling.heads import DiscriminatorHead, GeneratorHead
from electra_tf.pretraining import masking, sampling

# Fold-in ids giving each tower its own dropout stream from the step's dropout_seed.
GENERATOR_DROPOUT = 1
DISCRIMINATOR_DROPOUT = 2


def _weighted(values, weights):
    """(sum of values * weights, sum of weights) in float32."""
    weights = tf.cast(weights, tf.float32)
    return tf.reduce_sum(tf.cast(values, tf.float32) * weights), tf.reduce_sum(weights)


class ElectraPretrainer(keras.Model):
    """Generator + discriminator trained with the replaced-token-detection objective.

    Call with features {"input_ids", "input_mask", "segment_ids": int [B, T],
    "example_index": int64 [B]}; returns the loop's contract dict (see module docstring) plus
    "masked_input_ids", "sampled_ids" (the discriminator's input), "disc_labels", "disc_probs"
    [B, T] and the masked-LM slots for the text summary.
    """

    def __init__(self, model_config: ModelConfig, objective_config: ObjectiveConfig, *,
                 seed: int, mask_id: int, cls_id: int, sep_id: int, pad_id: int = 0,
                 name: str = "electra_pretrainer", **kwargs):
        super().__init__(name=name, **kwargs)
        model_config.validate()
        objective_config.validate(model_config)
        self.config = model_config
        self.objective = objective_config
        self.seed = int(seed)
        self.mask_id, self.cls_id, self.sep_id, self.pad_id = mask_id, cls_id, sep_id, pad_id
        generator_config = model_config.generator()
        self.embeddings = Embeddings(model_config)
        # The discriminator is built first, so the shared block lives under "electra/embeddings".
        self.discriminator = Backbone(model_config, self.embeddings, name="electra")
        self.generator = Backbone(generator_config, self.embeddings, name="generator")
        self.generator_head = GeneratorHead(model_config, generator_config.hidden_size)
        self.discriminator_head = DiscriminatorHead(model_config)
        self.built = True

    def call(self, features, training=False, dropout_seed=None):
        objective = self.objective
        input_ids = tf.cast(features["input_ids"], tf.int32)
        input_mask = tf.cast(features["input_mask"], tf.int32)
        segment_ids = tf.cast(features["segment_ids"], tf.int32)
        example_index = features["example_index"]
        gen_seed = disc_seed = None
        if dropout_seed is not None:
            gen_seed = common.fold_seed(dropout_seed, GENERATOR_DROPOUT)
            disc_seed = common.fold_seed(dropout_seed, DISCRIMINATOR_DROPOUT)

        masked = masking.mask_inputs(
            input_ids, input_mask, example_index, seed=self.seed, mask_prob=objective.mask_prob,
            max_predictions=objective.max_predictions_per_seq, mask_id=self.mask_id,
            special_ids=(self.cls_id, self.sep_id, self.mask_id))
        positions = masked["masked_lm_positions"]
        mlm_ids = masked["masked_lm_ids"]
        mlm_weights = masked["masked_lm_weights"]

        # Generator: masked LM, evaluated only at the N masked slots.
        generator_output = self.generator(
            {"input_ids": masked["masked_input_ids"], "input_mask": input_mask,
             "segment_ids": segment_ids}, training=training, dropout_seed=gen_seed)
        at_masked = tf.gather(generator_output, positions, batch_dims=1)
        mlm_logits = self.generator_head(at_masked, self.embeddings.word_embeddings)
        mlm_nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=mlm_ids,
                                                                 logits=mlm_logits)
        mlm_preds = tf.argmax(mlm_logits, axis=-1, output_type=tf.int32)

        # Sampling under stop_gradient; the discriminator sees the originals everywhere else.
        sampled = sampling.gumbel_max_sample(mlm_logits, example_index, seed=self.seed,
                                             temperature=objective.temperature)
        disc_input_ids, disc_labels = sampling.replace_with_samples(
            input_ids, positions, mlm_weights, sampled)

        # Discriminator: sigmoid BCE over every real token (including [CLS] and [SEP]).
        disc_output = self.discriminator(
            {"input_ids": disc_input_ids, "input_mask": input_mask, "segment_ids": segment_ids},
            training=training, dropout_seed=disc_seed)
        disc_logits = self.discriminator_head(disc_output)
        disc_bce = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(disc_labels, tf.float32), logits=disc_logits)
        disc_probs = tf.sigmoid(disc_logits)
        disc_preds = tf.cast(disc_logits > 0, tf.int32)

        mlm_loss = _weighted(mlm_nll, mlm_weights)
        disc_loss = _weighted(disc_bce, input_mask)
        disc_correct = tf.equal(disc_preds, disc_labels)
        return {
            "losses": {
                "masked_lm_loss": mlm_loss + (float(objective.gen_weight),),
                "disc_loss": disc_loss + (float(objective.disc_weight),),
            },
            "metrics": {
                "masked_lm_accuracy": _weighted(tf.equal(mlm_preds, mlm_ids), mlm_weights),
                "masked_lm_loss": mlm_loss,
                "sampled_masked_lm_accuracy": _weighted(tf.equal(sampled, mlm_ids),
                                                        mlm_weights),
                "disc_loss": disc_loss,
                "disc_accuracy": _weighted(disc_correct, input_mask),
                "disc_precision": _weighted(disc_correct, disc_preds * input_mask),
                "disc_recall": _weighted(disc_correct, disc_labels * input_mask),
            },
            "auc": {"disc_auc": (disc_labels, disc_probs, input_mask)},
            "input_ids": input_ids,
            "masked_input_ids": masked["masked_input_ids"],
            "sampled_ids": disc_input_ids,
            "disc_labels": disc_labels,
            "disc_probs": disc_probs,
            "masked_lm_positions": positions,
            "masked_lm_ids": mlm_ids,
            "masked_lm_weights": mlm_weights,
            "masked_lm_preds": mlm_preds,
        }
