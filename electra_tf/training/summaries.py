"""TensorBoard summaries of training: scalars and text under model_dir/train and model_dir/eval.

The recipe's TPUEstimator logged only the total loss during training and printed the metrics of
its evaluation; here the Trainer sends every metric of the model contract plus learning rate,
gradient norm and examples/s to TensorBoard, and after each evaluation the text its caller
makes of one held-out example (pre-training: how the generator and discriminator saw it).
"""

import tensorflow as tf

from electra_tf import io


class SummaryWriters:
    """One tf.summary writer per split ("train", "eval"), created lazily; no-op when disabled."""

    def __init__(self, model_dir: str, enabled: bool = True):
        self.model_dir = model_dir
        self.enabled = enabled
        self._writers = {}

    def _writer(self, split: str):
        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(io.join(self.model_dir, split))
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
