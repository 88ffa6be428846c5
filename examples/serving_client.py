"""Client for an ELECTRA model served by TF Serving (see docs/SERVING.md).

Builds the gRPC `PredictRequest` of the exported raw-text signature with tensorflow-serving-api's
protos and prints the equivalent REST `:predict` JSON body; with --server it sends the request
and prints each token with its output (replaced probability for a pre-trained discriminator).

    python examples/serving_client.py --text="the chef ate the meal" [--text_b=...] \
        [--server=localhost:8500] [--model_name=electra]
"""

import json

import grpc
import tensorflow as tf
from absl import app, flags
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("text", ["the chef ate the meal"], "Text(s) to send (repeatable).")
flags.DEFINE_multi_string("text_b", None, "Second segment per text, for sentence-pair models.")
flags.DEFINE_string("model_name", "electra", "The model name TF Serving was started with.")
flags.DEFINE_string("signature_name", "serving_default", "Signature to call.")
flags.DEFINE_string("server", None, "gRPC address (host:8500) to send the request to; "
                    "without it the request is only printed.")
flags.DEFINE_float("timeout", 10.0, "gRPC deadline in seconds.")


def build_request(texts, texts_b=None, model_name="electra", signature_name="serving_default"):
    """A PredictRequest for the raw-text signature (`text`, and `text_b` for pairs)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string))
    if texts_b:
        if len(texts_b) != len(texts):
            raise ValueError("--text_b needs one entry per --text")
        request.inputs["text_b"].CopyFrom(tf.make_tensor_proto(list(texts_b), dtype=tf.string))
    return request


def rest_body(texts, texts_b=None, signature_name="serving_default") -> str:
    """The REST body for POST http://HOST:8501/v1/models/NAME:predict (columnar "inputs")."""
    inputs = {"text": list(texts)}
    if texts_b:
        inputs["text_b"] = list(texts_b)
    return json.dumps({"signature_name": signature_name, "inputs": inputs}, ensure_ascii=False)


def main(argv):
    del argv
    request = build_request(FLAGS.text, FLAGS.text_b, FLAGS.model_name, FLAGS.signature_name)
    print(f"REST body for POST /v1/models/{FLAGS.model_name}:predict:")
    print(rest_body(FLAGS.text, FLAGS.text_b, FLAGS.signature_name))
    print()
    print("gRPC PredictRequest:")
    print(request)
    if not FLAGS.server:
        return
    channel = grpc.insecure_channel(FLAGS.server)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(request, FLAGS.timeout)
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    if "replaced_probability" in outputs:
        for row, (tokens, probs) in enumerate(zip(outputs["tokens"],
                                                  outputs["replaced_probability"])):
            print(f"text {row}:")
            for token, prob in zip(tokens, probs):
                if token:
                    print(f"  {token.decode('utf-8'):<16} {prob:.3f}")
    else:
        for name, value in sorted(outputs.items()):
            print(f"{name}: {value}")


if __name__ == "__main__":
    app.run(main)
