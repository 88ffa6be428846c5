"""One configuration object for the whole ELECTRA recipe: model sizes and the pre-training objective.

The presets reproduce the table "Model sizes" of the original recipe (small / base / large), plus a
`demo` size that learns visibly on a 2-core CPU within minutes. Every other module takes an
`ElectraConfig`; nothing else holds size constants.
"""

import dataclasses
import json
import os

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass
class ElectraConfig:
    """Sizes of the discriminator, the generator and the pre-training objective."""

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
    # Objective.
    max_seq_length: int = 128
    mask_prob: float = 0.15
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    temperature: float = 1.0

    @property
    def max_predictions_per_seq(self) -> int:
        # The reference sizes the masked-position buffer with a little slack over mask_prob.
        return int((self.mask_prob + 0.005) * self.max_seq_length)

    def generator_config(self) -> "ElectraConfig":
        """The generator tower's sizes: hidden scaled by generator_hidden_size, heads of width 64."""
        hidden = max(1, int(round(self.hidden_size * self.generator_hidden_size)))
        return dataclasses.replace(
            self,
            hidden_size=hidden,
            num_attention_heads=max(1, hidden // 64),
            intermediate_size=4 * hidden,
            num_hidden_layers=max(1, int(round(self.num_hidden_layers * self.generator_layers))),
        )

    def validate(self) -> None:
        """Raises ValueError with a one-line message naming the inconsistent field."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"mask_prob={self.mask_prob} must be in (0, 1)")
        if self.max_seq_length > self.max_position_embeddings:
            raise ValueError(f"max_seq_length={self.max_seq_length} exceeds "
                             f"max_position_embeddings={self.max_position_embeddings}")
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length={self.max_seq_length} must be at least 5")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ElectraConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ElectraConfig fields: {', '.join(unknown)}")
        return cls(**values)

    def save(self, path: str) -> None:
        """Writes the config as JSON atomically (temporary file, then rename)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "ElectraConfig":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


# The recipe's table; batch size, learning rate and step counts live in configs/*.flags.
PRESETS = {
    "small": ElectraConfig(
        embedding_size=128, hidden_size=256, num_hidden_layers=12,
        num_attention_heads=4, intermediate_size=1024,
        generator_hidden_size=0.25, max_seq_length=128, mask_prob=0.15),
    "base": ElectraConfig(
        embedding_size=768, hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072,
        generator_hidden_size=1.0 / 3.0, max_seq_length=512, mask_prob=0.15),
    "large": ElectraConfig(
        embedding_size=1024, hidden_size=1024, num_hidden_layers=24,
        num_attention_heads=16, intermediate_size=4096,
        generator_hidden_size=0.25, max_seq_length=512, mask_prob=0.25),
    # Small enough for a few minutes on a laptop CPU: 128 hidden x 4 layers, 32-wide generator.
    "demo": ElectraConfig(
        embedding_size=128, hidden_size=128, num_hidden_layers=4,
        num_attention_heads=2, intermediate_size=512,
        generator_hidden_size=0.25, max_seq_length=128, mask_prob=0.15),
}


def preset(name: str, **overrides) -> ElectraConfig:
    """Returns a copy of a preset with `overrides` applied (e.g. vocab_size from the vocab file)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model size {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
