"""The denoise benchmark's classifier comparison: `--classify` over draws and head settings.

`i2dl_keras.apps.denoise.compare_classifiers` trains one pretrained and one from-scratch
classifier on one draw of labelled images with one fixed head. This measures the same protocol
more carefully: for each of several seeded draws of `labels_per_class` labelled training images
per class, each arm (`i2dl_keras.apps.denoise.train_classifier`) trains once per pair of a head
dropout and a fine-tuning rate and keeps the pair its own validation accuracy prefers (ties: the
pair listed first, dropouts varying fastest), so that neither arm is judged with settings tuned
for the other. Accuracies and gains are averaged over the draws.
"""

from __future__ import annotations

import dataclasses
import itertools

import keras
import numpy as np

from i2dl_keras.apps import denoise


def parse_rates(text: str, flag: str, low: float, high: float, include_low: bool) -> list[float]:
    """`"0.5,0.7"` -> `[0.5, 0.7]`: one or more distinct rates in the interval, else SystemExit."""
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        rates = []
    inside = all((low <= r if include_low else low < r) and r <= high for r in rates)
    if not rates or not inside or len(set(rates)) != len(rates):
        interval = f"{'[' if include_low else '('}{low:g}, {high:g}]"
        raise SystemExit(f"{flag} must be distinct rates in {interval}, comma-separated: {text!r}")
    return rates


def augmentation(shift: float, seed: int):
    """Random shifts up to `shift` of the image side and rotations up to `0.4 * shift` turns."""
    if shift <= 0:
        return None
    layers = keras.Sequential(
        [
            keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed),
            keras.layers.RandomRotation(0.4 * shift, fill_mode="constant", seed=seed),
        ]
    )
    return lambda images: layers(images, training=True)


def compare_classifiers(
    model: keras.Model,
    datasets: denoise.DenoiseDatasets,
    config: denoise.Config,
    *,
    draws: int = 3,
    dropouts: tuple[float, ...] = (0.5,),
    finetune_rates: tuple[float, ...] = (0.1,),
    augment: float = 0.0,
) -> dict:
    """The pretrained encoder of `model` against training from scratch, over draws and settings.

    Args:
        model: The trained autoencoder.
        datasets: `denoise.make_datasets(config with classify=True, "train")`.
        config: The autoencoder's config (`labels_per_class`, `seed`: draw `d` uses `seed + d`).
        draws: Seeded draws of the labelled images. Defaults to `3`.
        dropouts: Head dropout rates each arm chooses from. Defaults to `(0.5,)`.
        finetune_rates: Fine-tuning rates, as fractions of the first stage's, each arm chooses
            from. Defaults to `(0.1,)`.
        augment: Random shifts of the labelled training images, as a fraction of the side (both
            arms); 0: none. Defaults to `0.0`.

    Returns:
        Means over the draws (`pretrained_probe_accuracy`, `pretrained_accuracy`,
        `scratch_accuracy`, `gain_points`), `gain_points_min`, and `per_draw` records with each
        arm's chosen `dropout`, `finetune_rate`, accuracies and, with several settings, `trials`.
    """
    train, validation, test, num_classes = denoise.labelled_splits(datasets)
    settings = list(itertools.product(finetune_rates, dropouts))
    if len(settings) > 1 and validation is None:
        raise SystemExit("choosing among several head settings needs labelled validation images")
    per_draw: list[dict] = []
    for draw in range(draws):
        seed = config.seed + draw
        subset = denoise.labelled_subset(train[1], config.labels_per_class, seed)
        labelled = (train[0][subset], train[1][subset])
        result: dict = {"seed": seed}
        for arm in ("pretrained", "scratch"):
            trials = []
            for finetune_rate, dropout in settings:
                recipe = dataclasses.replace(
                    denoise.CLASSIFIER, dropout=dropout, finetune_rate=finetune_rate
                )
                trial = denoise.train_classifier(
                    arm,
                    model,
                    config,
                    labelled,
                    validation,
                    test,
                    num_classes,
                    seed,
                    recipe=recipe,
                    augment=augmentation(augment, config.seed),
                )
                trials.append({"dropout": dropout, "finetune_rate": finetune_rate, **trial})
            # Chosen on the arm's own validation accuracy; ties go to the setting listed first.
            best = max(trials, key=lambda t: t.get("validation_accuracy", 0.0))
            result.update({f"{arm}_{key}": value for key, value in best.items()})
            if len(trials) > 1:
                result[f"{arm}_trials"] = trials
        per_draw.append(result)

    def mean(key: str) -> float:
        return float(np.mean([d[key] for d in per_draw]))

    gains = [100 * (d["pretrained_accuracy"] - d["scratch_accuracy"]) for d in per_draw]
    return {
        "labels_per_class": config.labels_per_class,
        "train_examples": int(len(subset)),
        "test_examples": int(len(test[1])),
        "draws": draws,
        "dropouts": list(dropouts),
        "finetune_rates": list(finetune_rates),
        "pretrained_probe_accuracy": mean("pretrained_probe_accuracy"),
        "pretrained_accuracy": mean("pretrained_accuracy"),
        "scratch_accuracy": mean("scratch_accuracy"),
        "gain_points": round(float(np.mean(gains)), 2),
        "gain_points_min": round(float(np.min(gains)), 2),
        "per_draw": per_draw,
    }


def chosen_settings(result: dict, arm: str) -> str:
    """`compare_classifiers`' choice for `arm` in each draw, as `dropout/fine-tuning rate`."""
    return " ".join(
        f"{d[f'{arm}_dropout']:g}/{d[f'{arm}_finetune_rate']:g}" for d in result["per_draw"]
    )
