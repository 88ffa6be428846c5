"""The recipe's two configurations: the architecture a checkpoint must match, and the objective.

`ModelConfig` holds the sizes of the discriminator and the generator (README "Model sizes" of
the recipe): it is what a checkpoint's variables depend on, so it is what `config.json` in a
model directory records and what a resumed run or an `--init_checkpoint` must match.
`ObjectiveConfig` holds how pre-training uses that model (sequence length, mask rate, loss
weights, sampling temperature): it can change between runs of the same weights, and a
fine-tuned model has none. The presets reproduce the recipe's small / base / large, plus a
`demo` size that learns visibly on a 2-core CPU within minutes.

    >>> model = MODEL_PRESETS["small"]
    >>> model.generator().hidden_size, OBJECTIVE_PRESETS["small"].max_predictions_per_seq
    (64, 19)
"""

import dataclasses

from electra_tf import io

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONFIG_FILE = "config.json"
# Beside a pre-training checkpoint: the ObjectiveConfig it was trained with (informative: the
# objective may change between runs of the same weights).
OBJECTIVE_FILE = "objective.json"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes of the discriminator and, as fractions of it, of the generator."""

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    # Generator width and depth as fractions of the discriminator's (recipe: generator_layers=1.0).
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0
    # The generator's attention heads; 0 (the default, so config.json files without the field
    # load as before): the recipe's max(1, generator hidden // 64). A Hugging Face generator
    # (ElectraForMaskedLM) records its own count, which need not follow that rule.
    generator_num_attention_heads: int = 0

    def generator(self) -> "ModelConfig":
        """The generator tower's sizes: hidden scaled by generator_hidden_size, FFN 4h, heads
        generator_num_attention_heads (default: 64-wide heads)."""
        hidden = max(1, int(round(self.hidden_size * self.generator_hidden_size)))
        return dataclasses.replace(
            self,
            hidden_size=hidden,
            num_attention_heads=self.generator_num_attention_heads or max(1, hidden // 64),
            intermediate_size=4 * hidden,
            num_hidden_layers=max(1, int(round(self.num_hidden_layers * self.generator_layers))),
        )

    def validate(self) -> None:
        """Raises ValueError with a one-line message naming the inconsistent field."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}")
        generator = self.generator()
        if self.generator_num_attention_heads < 0 or (
                generator.hidden_size % generator.num_attention_heads):
            raise ValueError(
                f"the generator's hidden size {generator.hidden_size} is not a multiple of "
                f"generator_num_attention_heads={self.generator_num_attention_heads}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """The architecture in `values`. The objective's fields, which config.json files of
        earlier versions also held, are ignored; any other unknown field is a ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        objective = {f.name for f in dataclasses.fields(ObjectiveConfig)}
        unknown = sorted(set(values) - known - objective)
        if unknown:
            raise ValueError(f"unknown model configuration fields: {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: str) -> None:
        io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str) -> "ModelConfig":
        try:
            return cls.from_dict(io.read_json(path))
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}: not a valid model configuration ({e})") from None


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
    """The pre-training objective: what is masked, how it is sampled and how losses combine."""

    max_seq_length: int = 128
    mask_prob: float = 0.15
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    temperature: float = 1.0

    @property
    def max_predictions_per_seq(self) -> int:
        # The reference sizes the masked-position buffer with a little slack over mask_prob.
        return int((self.mask_prob + 0.005) * self.max_seq_length)

    def validate(self, model: ModelConfig) -> None:
        """Raises ValueError with a one-line message naming the inconsistent field."""
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob={self.mask_prob} must be in (0, 1)")
        if self.max_seq_length > model.max_position_embeddings:
            raise ValueError(f"max_seq_length={self.max_seq_length} exceeds "
                             f"max_position_embeddings={model.max_position_embeddings}")
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length={self.max_seq_length} must be at least 5")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The recipe's table; batch size, learning rate and step counts live in configs/*.flags.
MODEL_PRESETS = {
    "small": ModelConfig(embedding_size=128, hidden_size=256, num_hidden_layers=12,
                         num_attention_heads=4, intermediate_size=1024,
                         generator_hidden_size=0.25),
    "base": ModelConfig(embedding_size=768, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072,
                        generator_hidden_size=1.0 / 3.0),
    "large": ModelConfig(embedding_size=1024, hidden_size=1024, num_hidden_layers=24,
                         num_attention_heads=16, intermediate_size=4096,
                         generator_hidden_size=0.25),
    # Small enough for a few minutes on a laptop CPU: 128 hidden x 4 layers, 32-wide generator.
    "demo": ModelConfig(embedding_size=128, hidden_size=128, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=512,
                        generator_hidden_size=0.25),
}
OBJECTIVE_PRESETS = {
    "small": ObjectiveConfig(max_seq_length=128, mask_prob=0.15),
    "base": ObjectiveConfig(max_seq_length=512, mask_prob=0.15),
    "large": ObjectiveConfig(max_seq_length=512, mask_prob=0.25),
    "demo": ObjectiveConfig(max_seq_length=128, mask_prob=0.15),
}
PRESETS = tuple(MODEL_PRESETS)


def _replaced(presets: dict, cls, name: str, overrides: dict):
    if name not in presets:
        raise ValueError(f"unknown model size {name!r}; choose one of {', '.join(presets)}")
    fields = {f.name for f in dataclasses.fields(cls)}
    known = {f.name for c in (ModelConfig, ObjectiveConfig) for f in dataclasses.fields(c)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown configuration fields: {', '.join(unknown)}")
    return dataclasses.replace(presets[name],
                               **{k: v for k, v in overrides.items() if k in fields})


def model_preset(name: str, **overrides) -> ModelConfig:
    """A copy of a size's architecture with `overrides` applied (e.g. vocab_size from the vocab
    file); overrides that are objective fields are ignored here."""
    return _replaced(MODEL_PRESETS, ModelConfig, name, overrides)


def objective_preset(name: str, **overrides) -> ObjectiveConfig:
    """A copy of a size's objective with `overrides` applied (architecture fields ignored)."""
    return _replaced(OBJECTIVE_PRESETS, ObjectiveConfig, name, overrides)
