"""TensorBoard summaries of ELECTRA training: scalars under model_dir/train and model_dir/eval.

The recipe's TPUEstimator logged only the total loss during training and printed the metrics of
its evaluation; here every metric of the model contract (masked_lm_loss, masked_lm_accuracy,
sampled_masked_lm_accuracy, disc_loss, disc_accuracy, disc_precision, disc_recall, disc_auc)
plus learning rate, gradient norm and examples/s go to TensorBoard, and each evaluation adds a
text summary that shows one held-out example as the generator and discriminator saw it.
"""

import os

import numpy as np
import tensorflow as tf


class SummaryWriters:
    """One tf.summary writer per split ("train", "eval"), created lazily; no-op when disabled."""

    def __init__(self, model_dir: str, enabled: bool = True):
        self.model_dir = model_dir
        self.enabled = enabled
        self._writers = {}

    def _writer(self, split: str):
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(
                os.path.join(self.model_dir, split))
        return self._writers[split]

    def scalars(self, split: str, step: int, values: dict) -> None:
        if not self.enabled:
            return
        with self._writer(split).as_default(step=step):
            for name, value in sorted(values.items()):
                tf.summary.scalar(name, float(value))
        self._writer(split).flush()

    def text(self, split: str, step: int, name: str, markdown: str) -> None:
        if not self.enabled:
            return
        with self._writer(split).as_default(step=step):
            tf.summary.text(name, markdown)
        self._writer(split).flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()  # a later write (Trainer.train called again) opens new writers


def _decode(vocab: list, ids) -> list:
    return [vocab[i] if 0 <= i < len(vocab) else f"<{i}>" for i in ids]


def format_pretraining_example(vocab: list, original_ids, masked_ids, sampled_ids,
                               disc_probs, input_mask) -> str:
    """Markdown table of one example: original / masked / generator sample / discriminator.

    A position is shown bold in the sample row when the generator replaced the token, and the
    discriminator's verdict is "fake" where its probability of "replaced" exceeds 0.5.
    """
    length = int(np.sum(input_mask))
    original = _decode(vocab, np.asarray(original_ids)[:length])
    masked = _decode(vocab, np.asarray(masked_ids)[:length])
    sampled = _decode(vocab, np.asarray(sampled_ids)[:length])
    probs = np.asarray(disc_probs, dtype=np.float64)[:length]
    sample_cells = [f"**{s}**" if s != o else s for s, o in zip(sampled, original)]
    verdicts = [f"{'fake' if p > 0.5 else 'real'} {p:.2f}" for p in probs]
    rows = [("original", original), ("masked", masked), ("generator sample", sample_cells),
            ("discriminator", verdicts)]
    header = "| position | " + " | ".join(name for name, _ in rows) + " |"
    lines = [header, "|" + "---|" * (len(rows) + 1)]
    for i in range(length):
        cells = [str(i)] + [values[i].replace("|", "\\|") for _, values in rows]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
