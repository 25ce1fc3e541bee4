"""Tests for the benchmarks' `--set FIELD=VALUE` parser."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _settings import settings  # noqa: E402


@dataclasses.dataclass
class _Config:
    width: int = 16
    rate: float = 2e-3
    skip: bool = True
    level: float | None = None
    name: str = "conv"


def test_values_take_their_fields_types():
    values = settings(_Config, ["width=8", "rate=1e-3", "skip=false", "level=0.3", "name=x"])
    assert values == {"width": 8, "rate": 1e-3, "skip": False, "level": 0.3, "name": "x"}
    assert type(values["width"]) is int and type(values["level"]) is float
    assert settings(_Config, ["skip=yes"]) == {"skip": True}
    assert dataclasses.replace(_Config(), **values).width == 8


def test_bad_settings_name_the_setting():
    with pytest.raises(SystemExit, match="--set depth=2: unknown setting 'depth'; choose from"):
        settings(_Config, ["depth=2"])
    with pytest.raises(SystemExit, match="--set width=wide: width must be of type int"):
        settings(_Config, ["width=wide"])
