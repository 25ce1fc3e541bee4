"""The exports folder as the repository reads it, and a new version served without a restart."""

import os
import shutil
import time

import httpx
import keras
import numpy as np

from i2dl_keras.apps import digits
from i2dl_keras.apps.model_card import CARD_FILE
from i2dl_keras.serving import ModelServer

TIMEOUT = 30.0


def test_export_writes_a_model_card_next_to_the_version(exported):
    out, _ = exported
    card = (out / "digits" / "serving" / CARD_FILE).read_text()
    assert card.startswith("# Model card: digits, version 1")
    for section in ("## Intended use", "## Data", "## Metrics", "## Configuration", "## Limits"):
        assert section in card
    assert "| input | `image_bytes` | string | [batch] |" in card
    assert "| output | `probabilities` | float | [batch, 4] |" in card
    assert "| accuracy |" in card and "| image_size | 16 |" in card
    assert "generated smoke-test data" in card
    assert (
        "| input | `text` | string | [batch] |"
        in (out / "sentiment/serving" / CARD_FILE).read_text()
    )


def _new_version(model: keras.Model, serving_dir, version: int) -> keras.Model:
    """Writes a different model as `version`, atomically, as `i2dl APP export` does."""
    changed = keras.models.clone_model(model)
    changed.set_weights(model.get_weights())
    net = next(layer for layer in changed.layers if isinstance(layer, keras.Model))
    dense = net.layers[-1]
    kernel, bias = dense.get_weights()
    bias[0] += 50.0  # now everything is class 0
    dense.set_weights([kernel, bias])
    config = digits.Config(image_size=16, num_classes=4)
    archive = keras.export.ExportArchive()
    archive.track(changed)
    for name, (fn, specs) in digits.serving_endpoints(changed, config).items():
        archive.add_endpoint(name=name, fn=fn, input_signature=list(specs))
    tmp = serving_dir / f".export-{version}"
    archive.write_out(str(tmp), verbose=False)
    os.rename(tmp, serving_dir / str(version))
    return changed


def test_a_new_version_is_served_without_a_restart(exported, tmp_path, png, b64, digits_expected):
    out, models = exported
    root = tmp_path / "saved_models"
    shutil.copytree(out / "digits" / "serving" / "1", root / "digits" / "serving" / "1")
    image = png(42)
    request = {"instances": [b64(image)]}
    with ModelServer(root, port=0, grpc_port=None, poll_seconds=0.1) as server:
        with httpx.Client(base_url=server.rest_url, timeout=TIMEOUT) as http:
            before = http.post("/v1/models/digits:predict", json=request).json()
            assert (
                before["predictions"][0]["class_ids"]
                == digits_expected(models["digits"], [image]).argmax()
            )
            changed = _new_version(models["digits"], root / "digits" / "serving", 2)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                versions = http.get("/v1/models/digits").json()["model_version_status"]
                if versions[0]["version"] == "2":
                    break
                time.sleep(0.1)
            assert [v["version"] for v in versions] == ["2"], versions
            after = http.post("/v1/models/digits:predict", json=request).json()
            np.testing.assert_allclose(
                after["predictions"][0]["probabilities"],
                digits_expected(changed, [image])[0],
                atol=1e-5,
            )
            assert after["predictions"][0]["class_ids"] == 0
            old = http.post("/v1/models/digits/versions/1:predict", json=request)
            assert old.status_code == 404, "like TF Serving, only the newest version is served"

            # A broken export is reported, and the version before it goes on serving.
            (root / "digits" / "serving" / "3").mkdir()
            (root / "digits" / "serving" / "3" / "saved_model.pb").write_bytes(b"broken")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                versions = http.get("/v1/models/digits").json()["model_version_status"]
                if versions[0]["version"] == "3":
                    break
                time.sleep(0.1)
            assert [(v["version"], v["state"]) for v in versions] == [
                ("3", "END"),
                ("2", "AVAILABLE"),
            ]
            assert versions[0]["status"]["error_message"]
            again = http.post("/v1/models/digits:predict", json=request).json()
            assert again["predictions"][0]["class_ids"] == 0
