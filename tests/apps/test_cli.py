"""The shared command line: help, flags from Config, config files, and clean errors."""

import json
import subprocess
import sys

import pytest

from i2dl_keras.apps import base, cli, digits, settings


def test_main_help_lists_apps_and_verbs(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("digits", "train", "evaluate", "predict", "tune", "export"):
        assert word in out


def test_app_help_lists_config_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["digits", "train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--data", "--config", "--no-augment", "--model"):
        assert flag in out


def test_unknown_app_is_an_error(capsys):
    assert cli.main(["nope", "train"]) == 2
    assert "unknown app 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["digits", "train", "--epochz", "3"], "unrecognized arguments: --epochz"),
        (["digits", "train", "--epochs", "three"], "--epochs expects int, got 'three'"),
        (["digits", "train", "--model", "vgg"], "invalid choice: 'vgg'"),
    ],
)
def test_bad_flags_exit_2_with_a_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_config_file_precedence_and_errors(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"epochs": 4, "learning_rate": 1, "augment": False}))
    values = cli.load_config_file(str(good), digits.Config)
    assert values == {"epochs": 4, "learning_rate": 1.0, "augment": False}

    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"epocs": 4}))
    with pytest.raises(settings.UsageError, match=r"unknown setting\(s\) \['epocs'\]"):
        cli.load_config_file(str(unknown), digits.Config)

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"batch_size": "64"}))
    with pytest.raises(settings.UsageError, match="batch_size expects int, got '64'"):
        cli.load_config_file(str(wrong), digits.Config)

    with pytest.raises(cli.CliError, match="no such file"):
        cli.load_config_file(str(tmp_path / "missing.json"), digits.Config)


def test_flags_override_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 4, "batch_size": 8}))
    parser = cli.build_parser("digits", digits)
    args = parser.parse_args(["train", "--config", str(path), "--epochs", "2"])
    assert cli._config_values(args, digits.Config) == {"epochs": 2, "batch_size": 8}


def test_invalid_values_are_one_line_errors(capsys, tmp_path):
    code = cli.main(["digits", "train", "--epochs", "0", "--output-dir", str(tmp_path)])
    assert code == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err


def test_missing_data_path_is_one_line_error(capsys, tmp_path):
    code = cli.main(
        ["digits", "train", "--data", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "nowhere" in err and "Traceback" not in err


def test_python_dash_m_apps_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "i2dl_keras.apps", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "digits" in proc.stdout


def test_evaluate_model_path_is_not_a_config_override(monkeypatch):
    seen = {}

    class Loaded:
        def evaluate(self, **values):
            seen.update(values)
            return {"data": "synthetic", "accuracy": 1.0}

    monkeypatch.setattr(base, "load", lambda app, path: seen.update(path=path) or Loaded())
    assert cli.main(["digits", "evaluate", "--model", "runs/x", "--batch-size", "8"]) == 0
    assert seen == {"path": "runs/x", "batch_size": 8}
