"""`--class-weight`: the loss weighs each class as asked, and a rare class is found more often."""

import json

import numpy as np
import pytest
from PIL import Image

from i2dl_keras.apps import digits, loading, settings

SETTINGS = dict(epochs=6, batch_size=32, image_size=16, width=4, augment=False, patience=10)


def _imbalanced_folder(root, rng):
    # The rare class differs from the common one only a little, and is a tenth as frequent.
    for split, counts in (
        ("train", {"common": 200, "rare": 20}),
        ("test", {"common": 60, "rare": 60}),
    ):
        for name, count in counts.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            mean = 110 if name == "common" else 135
            for i in range(count):
                pixels = np.clip(rng.normal(mean, 30, (16, 16)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _recall(run, folder, name):
    results = run.predict(folder / "test" / name)
    return np.mean([r["label"] == name for r in results])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    data = _imbalanced_folder(tmp_path_factory.mktemp("data"), np.random.default_rng(0))
    out = str(tmp_path_factory.mktemp("out"))
    plain = digits.train(data=str(data), output_dir=out, **SETTINGS)
    balanced = digits.train(data=str(data), output_dir=out, class_weight="balanced", **SETTINGS)
    return data, plain, balanced


def test_balanced_weights_find_the_rare_class_more_often(runs):
    data, plain, balanced = runs
    weights = json.loads((balanced.path / "metrics.json").read_text())["class_weight"]
    # 200 + 20 training images minus the held-out validation tenth, two classes: n / (2 n_c).
    assert weights["1"] / weights["0"] == pytest.approx(10, rel=0.25)
    assert json.loads((plain.path / "metrics.json").read_text())["class_weight"] is None
    assert _recall(balanced, data, "rare") >= _recall(plain, data, "rare") + 0.2


def test_a_json_mapping_and_bad_values(runs, tmp_path):
    data, plain, _ = runs
    datasets = digits.make_datasets(plain.config, "train")
    mapped = digits.Config(
        **{**settings.config_to_dict(plain.config), "class_weight": '{"rare": 3}'}
    )
    assert loading.class_weights(mapped, datasets) == {0: 1.0, 1: 3.0}
    for bad, message in (('{"fox": 1}', "unknown classes"), ("heavy", "must be 'balanced'")):
        wrong = digits.Config(**{**settings.config_to_dict(plain.config), "class_weight": bad})
        with pytest.raises(settings.UsageError, match=message):
            loading.class_weights(wrong, datasets)
