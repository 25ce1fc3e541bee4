"""Scaling out for real, in fresh processes that talk over loopback.

- two `--strategy multi_worker` workers train digits together, are interrupted, and resume
  together: both finish, only the chief keeps a run folder, and both end with the same weights;
- `--strategy mirrored` on a CPU split into two logical devices keeps two identical replicas;
- a KerasTuner chief and two workers share one search; only the chief retrains.

Addresses are 127.0.0.1 on free ports (TensorFlow's own gRPC server still listens on every
interface: it has no bind-address option); every group of processes has a deadline, and what
still runs then is killed with its process group.
"""

import json
import os
import re
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import keras
import pytest

from i2dl_keras import distribute, tuning
from i2dl_keras.apps import cli

# 144 training examples in batches of 48: three steps an epoch, split over two replicas.
FAST = [
    "--data",
    "synthetic",
    "--epochs",
    "2",
    "--batch-size",
    "48",
    "--image-size",
    "16",
    "--width",
    "8",
    "--no-augment",
]
DEADLINE = 400  # seconds for a whole group of processes; generous for a loaded 2-core machine


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while choosing, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k != "TF_CONFIG" and not k.startswith("KERASTUNER_")
    }
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **extra)
    return env


# What every process of these tests imports first: they start warm, forked from one template
# that ran these lines (tests/conftest.py), instead of each importing TensorFlow for seconds.
WARM_IMPORTS = "import sys\nimport keras\nimport tensorflow\nfrom i2dl_keras.apps import base, cli"


def _run_together(
    start, commands: dict[str, tuple[list[str], dict]], logs: Path, status: int = 0
) -> dict[str, str]:
    """Starts every command at once (`start` is the `fresh_python_start` fixture), waits for
    all, and returns each one's output.

    Fails (after killing what still runs) when one exits with another status than `status`, or
    the deadline passes.
    """
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    try:
        for name, (argv, env) in commands.items():
            procs[name] = start(
                argv,
                log=logs / f"{name}.log",
                env=env,
                cwd=logs,
                imports=WARM_IMPORTS,
                template_env=_clean_env(),
            )
        deadline = time.monotonic() + DEADLINE
        for name, proc in procs.items():
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running after {DEADLINE}s:\n{_tail(logs, name)}")
    finally:
        for proc in procs.values():
            proc.kill()
    outputs = {name: (logs / f"{name}.log").read_text() for name in procs}
    for name, proc in procs.items():
        assert proc.returncode == status, f"{name} exited {proc.returncode}:\n{_tail(logs, name)}"
    return outputs


def _tail(logs: Path, name: str) -> str:
    return (logs / f"{name}.log").read_text()[-4000:]


def _runs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "digits").glob("run-*") if p.is_dir())


# `python -m i2dl_keras.apps` whose training is interrupted (Ctrl-C) at the end of its first epoch.
INTERRUPTED_CLI = (
    "import functools, sys, keras; from i2dl_keras.apps import base, cli\n"
    "class Stop(keras.callbacks.Callback):\n"
    "    def on_epoch_end(self, epoch, logs=None):\n"
    "        raise KeyboardInterrupt\n"
    "base.train = functools.partial(base.train, extra_callbacks=[Stop()])\n"
    "sys.exit(cli.main(sys.argv[1:]))"
)


def test_two_workers_train_in_step_resume_together_and_only_the_chief_keeps_the_run(
    tmp_path, fresh_python_start, cli_code
):
    out = tmp_path / "out"
    train = ["digits", "train", *FAST, "--strategy", "multi_worker", "--output-dir", str(out)]

    def workers(prefix):
        # Fresh ports for each cluster: the first one's may linger in TIME_WAIT.
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
        # Worker 1 even starts from another seed (other initial weights, another order and
        # split of the data): equal weights at the end can only come from the strategy, which
        # broadcasts the chief's initial weights and all-reduces the gradients of every step.
        return {
            f"worker{i}": (
                [*prefix, *train, "--seed", str(i)],
                _clean_env(
                    TF_CONFIG=json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": i}}
                    )
                ),
            )
            for i in range(2)
        }

    # Both are interrupted after epoch 1: each keeps its own checkpoint, the chief's untouched.
    _run_together(
        fresh_python_start, workers(["-c", INTERRUPTED_CLI]), tmp_path / "first", status=130
    )
    assert not _runs(out)
    folders = sorted(p.name for p in (out / "digits").glob(".incomplete-*"))
    assert sorted(f.endswith("-worker1") for f in folders) == [False, True], folders
    for folder in folders:
        assert (out / "digits" / folder / "backup" / "latest.weights.h5").is_file()

    logs = _run_together(fresh_python_start, workers(["-c", cli_code]), tmp_path / "logs")
    for name, log in logs.items():
        assert "on 2 replica(s)" in log, name
        assert "resuming the interrupted run" in log and "Epoch 2/2" in log, log[-3000:]
        assert "Epoch 1/2" not in log, f"{name} started over"
    (run,) = _runs(out)
    assert f"run saved in {run}" in logs["worker0"]
    assert "run saved in" not in logs["worker1"]
    assert not list((out / "digits").glob(".incomplete-*")), "a worker's folder was left behind"
    assert (run / "logs" / "train").is_dir() and (run / "logs" / "validation").is_dir()

    prints = {
        name: re.findall(r"^weights fingerprint: (\w+)$", log, flags=re.M)
        for name, log in logs.items()
    }
    assert prints["worker0"] == prints["worker1"] and len(prints["worker0"]) == 1, prints
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["weights_fingerprint"] == prints["worker0"][0]
    # One epoch trained after the interruption; the history covers the one before it too.
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == 2, metrics["history"]
    model = keras.saving.load_model(run / "model.keras")
    assert distribute.weights_fingerprint(model) == prints["worker0"][0]


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    # Must come before TensorFlow initialises its devices, hence a process of its own.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np
    from i2dl_keras.apps import base, digits

    class Keep(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = [w.numpy().copy() for w in self.model.trainable_weights]

    keep, said = Keep(), []
    config = digits.Config(
        data="synthetic", epochs=2, batch_size=48, image_size=16, width=8, augment=False,
        strategy="mirrored", output_dir=sys.argv[1],
    )
    run = base.train(digits, config, echo=said.append, extra_callbacks=[keep])
    model = keep.model
    copies = [[c.numpy() for c in w.value.values] for w in model.weights]
    print("RESULT " + json.dumps({
        "said": said,
        "run": str(run.path),
        "devices": [c.device for c in model.weights[0].value.values],
        "replica_gap": max(float(np.abs(c[0] - c[-1]).max()) for c in copies),
        "moved": max(
            float(np.abs(w.numpy() - s).max())
            for w, s in zip(model.trainable_weights, keep.start)
        ),
    }))
""")


def test_mirrored_over_two_logical_cpus_keeps_identical_replicas(tmp_path, fresh_python_start):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    out = tmp_path / "out"
    commands = {"mirrored": ([str(script), str(out)], _clean_env())}
    logs = _run_together(fresh_python_start, commands, tmp_path / "logs")
    (line,) = [s for s in logs["mirrored"].splitlines() if s.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))

    assert any("MirroredStrategy on 2 replica(s)" in s for s in result["said"]), result["said"]
    assert [d.rsplit("/", 1)[-1] for d in result["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert result["moved"] > 1e-4, "training did not change the weights"
    assert result["replica_gap"] == 0.0, "the two replicas drifted apart"
    (run,) = _runs(out)
    assert result["run"] == str(run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["replicas"] == 2


def test_distributed_search_chief_serves_workers_train_chief_retrains(
    tmp_path, fresh_python_start, cli_code
):
    out = tmp_path / "out"
    (port,) = map(str, _free_ports(1))
    argv = [
        "-c",
        cli_code,
        "digits",
        "tune",
        *FAST,
        "--epochs",
        "1",
        "--tuner",
        "random",
        "--max-trials",
        "2",
        "--max-epochs",
        "1",
        "--output-dir",
        str(out),
    ]
    # KerasTuner's chief checks every 20 s whether the last worker has gone, once one has; a
    # poll of half a second keeps the test short and changes nothing else.
    chief_argv = [
        "-c",
        "import sys, time, types; "
        "from keras_tuner.src.distribute import oracle_chief; "
        "oracle_chief.time = types.SimpleNamespace(sleep=lambda s: time.sleep(min(s, 0.5))); "
        "from i2dl_keras.apps.cli import main; sys.exit(main(sys.argv[1:]))",
        *argv[2:],
    ]
    commands = {
        tuner_id: (
            chief_argv if tuner_id == "chief" else argv,
            _clean_env(
                KERASTUNER_TUNER_ID=tuner_id,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=port,
            ),
        )
        for tuner_id in ("chief", "tuner1", "tuner2")
    }
    logs = _run_together(fresh_python_start, commands, tmp_path / "logs")

    chief = logs["chief"]
    assert f"serving the search at 127.0.0.1:{port}" in chief
    rows = re.findall(r"^(\d+)\s+\d\.\d{4}\s+COMPLETED\b", chief, flags=re.M)
    assert sorted(rows) == ["0", "1"], chief[-3000:]
    assert "retraining the best configuration" in chief
    (run,) = _runs(out)
    assert f"run saved in {run}" in chief
    for worker in ("tuner1", "tuner2"):
        log = logs[worker]
        assert f"running trials for the chief at 127.0.0.1:{port} as {worker}" in log
        assert "no trials left" in log
        assert "retraining" not in log and "score" not in log, log[-3000:]
    (project,) = (out / "digits" / "tuning").iterdir()
    trials = sorted(p.name for p in project.glob("trial_*"))
    assert trials == ["trial_0", "trial_1"]
    for trial in trials:
        assert json.loads((project / trial / "trial.json").read_text())["status"] == "COMPLETED"


@pytest.mark.parametrize(
    "env, role",
    [
        ({}, "alone"),
        (
            {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1"},
            "KERASTUNER_ORACLE_PORT not set",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "chief",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "x",
            },
            "must be a port number",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "chief",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            "chief",
        ),
        (
            {
                "KERASTUNER_TUNER_ID": "tuner1",
                "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": "8000",
            },
            "worker",
        ),
    ],
)
def test_distributed_role_reads_kerastuner_environment(monkeypatch, env, role):
    for name in tuning.ORACLE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if role not in ("alone", "chief", "worker"):
        with pytest.raises(ValueError, match=role):
            tuning.distributed_role()
    else:
        assert tuning.distributed_role() == role


def test_tune_refuses_multi_worker_trials(tmp_path, capsys):
    argv = ["digits", "tune", *FAST, "--strategy", "multi_worker", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "KERASTUNER_ORACLE_IP" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing may be written before the refusal"
