"""Tiles for the overlap-tile prediction of i2dl_keras.dense_prediction (the whole-pass checks
run through the segmentation app in tests/apps/test_segmentation.py)."""

from i2dl_keras import dense_prediction


def test_tile_origins_cover_the_image_once():
    starts, cuts = dense_prediction.tile_origins(300, 128, 32)
    assert starts == [0, 96, 172] and cuts[0] == 0 and cuts[-1] == 300
    for start, lo, hi in zip(starts, cuts, cuts[1:]):
        assert start <= lo < hi <= start + 128
    assert dense_prediction.tile_origins(64, 128, 32) == ([0], [0, 64])
