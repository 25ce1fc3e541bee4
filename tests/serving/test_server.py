"""`ModelServer`: REST and gRPC answer from the same models, alone and under concurrent load."""

import concurrent.futures

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

TIMEOUT = 30.0


def test_sentiment_answers_raw_strings_over_rest_and_grpc(exported, client, stub):
    _, models = exported
    texts = ["a wonderful , moving film", "naïve — überlong… and dull", ""]
    expected = models["sentiment"].predict_on_batch(tf.constant(texts))

    response = client.post("/v1/models/sentiment:predict", json={"instances": texts})
    assert response.status_code == 200, response.text
    got = [row["probabilities"] for row in response.json()["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-5)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sentiment"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([t.encode() for t in texts]))
    outputs = stub.Predict(request, timeout=TIMEOUT).outputs
    np.testing.assert_allclose(tf.make_ndarray(outputs["probabilities"]), expected, atol=1e-5)


def test_concurrent_requests_each_get_their_own_answer(
    exported, client, stub, png, b64, digits_expected
):
    _, models = exported
    pngs = [png(10 + i, size=16 + i) for i in range(12)]
    expected = digits_expected(models["digits"], pngs)
    bad = 5  # one broken image among them must fail alone, not its whole batch

    def over_rest(i):
        body = b64(b"not a png" if i == bad else pngs[i])
        return client.post("/v1/models/digits:predict", json={"instances": [body]})

    def over_grpc(i):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "digits"
        request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([pngs[i]]))
        return tf.make_ndarray(stub.Predict(request, timeout=TIMEOUT).outputs["probabilities"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        rest = list(pool.map(over_rest, range(len(pngs))))
        grpc_results = list(pool.map(over_grpc, range(len(pngs))))
    for i, response in enumerate(rest):
        if i == bad:
            assert response.status_code == 400 and set(response.json()) == {"error"}
            continue
        assert response.status_code == 200, response.text
        got = response.json()["predictions"][0]["probabilities"]
        np.testing.assert_allclose(got, expected[i], atol=1e-5)
    np.testing.assert_allclose(np.concatenate(grpc_results), expected, atol=1e-5)


def test_each_batched_signature_gets_one_batch_thread_by_default(server):
    model = server.repository.get("digits")
    assert set(model.batchers) == {"serving_default", "serve_pixels"}
    assert {name: b.num_threads for name, b in model.batchers.items()} == {
        "serving_default": 1,
        "serve_pixels": 1,
    }
    # The batcher's settings are the server's: 5 ms window, 32 rows.
    batcher = model.batchers["serving_default"]
    assert (batcher.timeout, batcher.max_batch_size) == (0.005, 32)
