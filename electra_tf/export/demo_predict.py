"""The end of `make demo`: replaced-token detection by the exported SavedModel.

ELECTRA's discriminator predicts, for every token, whether it was replaced. This script loads the
newest version under --export_dir exactly as a server would (TensorFlow + tensorflow-text; no
model code of this project), sends a sentence in which one word was swapped by hand (the paper's
example: "the chef cooked the meal" -> "the chef ate the meal") and prints each token with its
replaced probability, marking the swapped word and the token the model finds most suspicious.

    python -m electra_tf.export.demo_predict --export_dir=demo_out/serving
"""

# First: imports TensorFlow with its C++ start-up notices filtered out (electra_tf/cli.py).
from electra_tf import cli  # isort: skip

# isort: split
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the tokenizer's ops for the loaded graph)
from absl import flags

from electra_tf import io

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "Directory of integer SavedModel versions (the newest "
                    "is used), as written by export_saved_model.py.")
flags.DEFINE_string("original", "the chef cooked the meal .", "The sentence as written.")
flags.DEFINE_string("swapped", "the chef ate the meal .",
                    "The same sentence with one word replaced by hand.")


def latest_version(export_dir: str) -> str:
    versions = sorted(int(n) for n in io.listdir(export_dir) if n.isdigit()) \
        if tf.io.gfile.isdir(export_dir) else []
    if not versions:
        raise cli.UserError(f"--export_dir={export_dir}: no SavedModel version directory")
    return io.join(export_dir, str(versions[-1]))


def swapped_words(original: str, swapped: str) -> set[str]:
    return {b.lower() for a, b in zip(original.split(), swapped.split()) if a != b}


def main(argv):
    del argv
    path = latest_version(FLAGS.export_dir)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(text=tf.constant([FLAGS.swapped]), text_b=tf.constant([], tf.string))
    tokens = [t.decode("utf-8") for t in outputs["tokens"].numpy()[0]]
    probs = outputs["replaced_probability"].numpy()[0]
    real = [i for i, t in enumerate(tokens) if t and t not in ("[CLS]", "[SEP]")]
    top = max(real, key=lambda i: probs[i]) if real else -1
    changed = swapped_words(FLAGS.original, FLAGS.swapped)
    print(f"SavedModel {path}")
    print(f"original: {FLAGS.original}")
    print(f"swapped : {FLAGS.swapped}")
    print(f"{'token':<14} {'replaced probability':<22}")
    for i, token in enumerate(tokens):
        if not token:
            continue
        notes = []
        if token.lower() in changed:
            notes.append("<- swapped by hand")
        if i == top:
            notes.append("<- most suspicious")
        bar = "#" * int(round(probs[i] * 20))
        print(f"{token:<14} {probs[i]:.3f} {bar:<20} {' '.join(notes)}")


if __name__ == "__main__":
    flags.mark_flag_as_required("export_dir")
    cli.run(main)
