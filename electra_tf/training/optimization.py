"""The ELECTRA recipe's optimizer: AdamW without bias correction, its schedule, layer-wise lr decay.

Recipe (docs/RECIPE.md "Optimizer"):
- AdamW with beta1 0.9, beta2 0.999, epsilon 1e-6 and NO bias correction; the decoupled weight
  decay (0.01) is added to the Adam direction before multiplying by the learning rate, and is not
  applied to variables whose name matches "LayerNorm", "layer_norm" or "bias" (the reference's
  regexes, searched in the full TF1-style variable path).
- Global-norm gradient clipping at 1.0: done by the training loop, not here (see below).
- lr = peak * (1 - step / T) * min(1, step / warmup)  (linear decay to 0, times linear warmup).
- Fine-tuning: layer-wise lr decay, lr * decay^(L + 2 - depth) with depth 0 for the embeddings
  (and embeddings_project), i + 1 for encoder layer i, L + 2 for everything else (the task head).

Gradient contract under tf.distribute (the Trainer in loop.py is its one caller): `apply` is
called in replica context with each replica's gradient of its share of the global loss, already
multiplied by the global clipping factor; Keras sums the gradients over the replicas itself (its
public behaviour for a replica-context `apply`), and these optimizers add nothing to that: no
reduction of their own and no clipping. Keras' own clipping (clipnorm, global_clipnorm,
clipvalue) is refused, because Keras clips each replica's partial gradient before the sum, which
is not the recipe's clipping of the summed gradient. Gradient accumulation belongs to the loop
too (it averages micro-batch gradients and calls `apply` once), so Keras' own is refused.

Mixed precision: slots and updates are in the variables' dtype (float32 under mixed_bfloat16 and
mixed_float16); for mixed_float16 the optimizer goes inside keras.optimizers.LossScaleOptimizer,
which unscales the gradients before they reach it.
"""

import re
from collections.abc import Iterable, Sequence

import keras
import tensorflow as tf
from keras import ops

# The reference's exclude_from_weight_decay list, matched with re.search like the reference.
NO_DECAY_PATTERNS = ("LayerNorm", "layer_norm", "bias")

_EMBEDDINGS_DEPTH_RE = re.compile(r"(^|/)(embeddings|embeddings_project)/")
_LAYER_RE = re.compile(r"(^|/)encoder/layer_(\d+)/")


def _variable_path(variable) -> str:
    # keras.Variable has `path` (ending in the TF1 checkpoint name); tf.Variable only `name`.
    return getattr(variable, "path", None) or variable.name


def layer_depth(path: str, num_layers: int) -> int:
    """The reference's depth of a variable: embeddings 0, encoder layer i -> i + 1, else L + 2."""
    layer = _LAYER_RE.search(path)
    if layer:
        index = int(layer.group(2))
        if index >= num_layers:
            raise ValueError(f"variable {path} is in layer {index} but num_layers={num_layers}")
        return index + 1
    if _EMBEDDINGS_DEPTH_RE.search(path):
        return 0
    return num_layers + 2


def layerwise_lr_multipliers(
    variables: Iterable, num_layers: int, decay: float
) -> dict[str, float]:
    """{variable.path: decay ** (num_layers + 2 - depth)} for layer-wise lr decay in fine-tuning."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1 (got {num_layers})")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layer-wise lr decay must be in (0, 1] (got {decay})")
    paths = [_variable_path(v) for v in variables]
    return {path: float(decay ** (num_layers + 2 - layer_depth(path, num_layers)))
            for path in paths}


@keras.saving.register_keras_serializable(package="electra_tf")
class LinearWarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """peak * (1 - min(step, T) / T) * min(1, step / warmup): the recipe's schedule.

    As in the reference, the warmup multiplies the already-decaying rate (so the peak actually
    reached is peak * (1 - warmup / T)), and step 0 has learning rate 0 when warmup > 0.
    """

    def __init__(self, peak_learning_rate: float, num_train_steps: int, num_warmup_steps: int):
        if peak_learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0 (got {peak_learning_rate})")
        if num_train_steps < 1:
            raise ValueError(f"num_train_steps must be >= 1 (got {num_train_steps})")
        if num_warmup_steps < 0:
            raise ValueError(f"num_warmup_steps must be >= 0 (got {num_warmup_steps})")
        self.peak_learning_rate = float(peak_learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.num_warmup_steps = int(num_warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        total = float(self.num_train_steps)
        lr = self.peak_learning_rate * (1.0 - tf.minimum(step, total) / total)
        if self.num_warmup_steps:
            lr *= tf.minimum(1.0, step / float(self.num_warmup_steps))
        return lr

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
        }


class _RecipeRules:
    """What both optimizers share: no clipping or accumulation of Keras' own, dense gradients."""

    def _init_rules(self, no_decay_patterns: Sequence[str]) -> None:
        for name in ("clipnorm", "global_clipnorm", "clipvalue"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} is not supported: the Trainer clips the gradient "
                                 "summed over replicas (Keras would clip each replica's part)")
        if self.gradient_accumulation_steps:
            raise ValueError("gradient accumulation belongs to the training loop, not the "
                             "optimizer: leave gradient_accumulation_steps unset")
        self.no_decay_patterns = tuple(no_decay_patterns)
        self._no_decay_re = (re.compile("|".join(self.no_decay_patterns))
                             if self.no_decay_patterns else None)

    def decays(self, variable) -> bool:
        """Whether the recipe decays this (Keras) variable: no pattern matches its path."""
        return self._no_decay_re is None or not self._no_decay_re.search(_variable_path(variable))

    def apply(self, grads, trainable_variables=None):
        # Embedding gradients arrive as IndexedSlices; the recipe's update touches every row
        # anyway (the moments decay everywhere), so they are densified once, here.
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                 for g in grads]
        return super().apply(grads, trainable_variables)


@keras.saving.register_keras_serializable(package="electra_tf")
class AdamWeightDecay(_RecipeRules, keras.optimizers.Optimizer):
    """The reference's AdamWeightDecayOptimizer as a Keras 3 optimizer.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2  (no bias correction)
    update = m / (sqrt(v) + eps) + wd * param          (wd only where no pattern matches the path)
    param <- param - lr * multiplier(param) * update

    `layerwise_lr_decay` with `num_layers` sets multiplier = decay^(L + 2 - depth) (fine-tuning);
    otherwise every multiplier is 1.
    """

    def __init__(
        self,
        learning_rate=1e-3,
        weight_decay_rate: float = 0.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        no_decay_patterns: Sequence[str] = NO_DECAY_PATTERNS,
        layerwise_lr_decay: float | None = None,
        num_layers: int | None = None,
        name: str = "adam_weight_decay",
        **kwargs,
    ):
        if kwargs.get("weight_decay") is not None:
            raise ValueError("use weight_decay_rate: the recipe adds the decay to the Adam "
                             "direction, not as Keras' separate decay step")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._init_rules(no_decay_patterns)
        if (layerwise_lr_decay is None) != (num_layers is None):
            raise ValueError("layerwise_lr_decay and num_layers must be given together")
        if layerwise_lr_decay is not None:
            # Validates both arguments now rather than at the first step.
            layerwise_lr_multipliers([], num_layers, layerwise_lr_decay)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.layerwise_lr_decay = layerwise_lr_decay
        self.num_layers = num_layers

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._m, self._v = self.add_optimizer_variables(variables, ["adam_m", "adam_v"])
        # update_step sees tf.Variables (per-device components under tf.distribute) that lack
        # the Keras path, so per-variable rules are resolved here and looked up by index.
        self._decays = [self.decays(v) for v in variables]
        if self.layerwise_lr_decay is None:
            self._lr_multipliers = [1.0] * len(variables)
        else:
            by_path = layerwise_lr_multipliers(variables, self.num_layers,
                                               self.layerwise_lr_decay)
            self._lr_multipliers = [by_path[_variable_path(v)] for v in variables]

    def lr_multiplier(self, variable) -> float:
        """The learning-rate multiplier of a variable the optimizer was built on."""
        return self._lr_multipliers[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, dtype) * self._lr_multipliers[index]
        gradient = ops.cast(gradient, dtype)
        m, v = self._m[index], self._v[index]
        self.assign(m, self.beta_1 * m + (1.0 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient))
        update = m / (ops.sqrt(v) + self.epsilon)
        if self.weight_decay_rate and self._decays[index]:
            update = update + self.weight_decay_rate * variable
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update({
            "weight_decay_rate": self.weight_decay_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "no_decay_patterns": list(self.no_decay_patterns),
            "layerwise_lr_decay": self.layerwise_lr_decay,
            "num_layers": self.num_layers,
        })
        return config


@keras.saving.register_keras_serializable(package="electra_tf")
class LambWeightDecay(_RecipeRules, keras.optimizers.Lamb):
    """keras.optimizers.Lamb with the recipe's decay exclusions.

    For large global batches (`--optimizer=lamb`); the decay is Keras' decoupled decay
    (param -= lr * wd * param before the Lamb step), excluded through Keras'
    `exclude_from_weight_decay` for the variables whose path matches a pattern.
    """

    def __init__(self, learning_rate=1e-3, no_decay_patterns: Sequence[str] = NO_DECAY_PATTERNS,
                 name: str = "lamb", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self._init_rules(no_decay_patterns)

    def build(self, variables):
        if self.built:
            return
        # Keras accepts exclusions only before it is built; its var_names option would match
        # the variable's short name, not the path the recipe's patterns are written for.
        self.exclude_from_weight_decay(var_list=[v for v in variables if not self.decays(v)])
        super().build(variables)

    def get_config(self):
        config = super().get_config()
        config["no_decay_patterns"] = list(self.no_decay_patterns)
        return config


OPTIMIZERS = ("adamw", "lamb")


def create_optimizer(
    name: str,
    learning_rate: float,
    num_train_steps: int,
    num_warmup_steps: int,
    weight_decay: float = 0.01,
    layerwise_lr_decay: float | None = None,
    num_layers: int | None = None,
    *,
    epsilon: float = 1e-6,
) -> keras.optimizers.Optimizer:
    """The recipe's optimizer with its schedule; create it inside `strategy.scope()`.

    name: "adamw" (the recipe) or "lamb". It neither sums nor clips gradients beyond Keras' own
    replica sum: the Trainer clips (see the module docstring).
    Raises ValueError with a one-line message for an unknown name or out-of-range values.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0 (got {weight_decay})")
    schedule = LinearWarmupLinearDecay(learning_rate, num_train_steps, num_warmup_steps)
    if name == "adamw":
        return AdamWeightDecay(
            learning_rate=schedule, weight_decay_rate=weight_decay, epsilon=epsilon,
            layerwise_lr_decay=layerwise_lr_decay, num_layers=num_layers)
    if layerwise_lr_decay is not None:
        raise ValueError("layer-wise lr decay is implemented for the adamw optimizer only")
    return LambWeightDecay(learning_rate=schedule, weight_decay=weight_decay or None,
                           epsilon=epsilon)
