"""Shared pytest setup: quiet TensorFlow without oneDNN (but for real-data trainings), seeded
Keras, the path to ../shared/data, and fresh Python processes forked from a warm template
instead of started cold (see `fresh_python`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's plain CPU kernels rather than oneDNN's: the suite's many tiny models spend more
# time setting up oneDNN kernels than running them (benchmarks/RESULTS.md). Read once, when
# TensorFlow is imported; the processes the tests start inherit it, but for the real-data
# trainings, which run faster with oneDNN (`train_with_onednn`, the README and the notebook).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import ast  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import locale  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import tokenize  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402

import i2dl_keras.export  # noqa: E402
import i2dl_keras.testing  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


@pytest.fixture(autouse=True, scope="module")
def _fresh_session():
    # Once per module, without the full garbage collection (up to a second each time): fresh
    # layer names and global state are what the isolation needs; Python collects as it goes.
    yield
    keras.backend.clear_session(free_memory=False)


@pytest.fixture
def shared_data() -> Path:
    """The real data sets in ../shared/data; skips the test when that folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see the project README)")
    return SHARED_DATA


# --------------------------------------------------------------------------- fresh processes
#
# Many checks run a script in a fresh Python process: a `.keras` file must load with nothing but
# `import i2dl_keras`, a SavedModel must serve without i2dl_keras. Most of such a process's life
# is its first lines, `import tensorflow` and friends (about 5 s); the check itself takes a
# fraction of a second. So a template process per distinct set of first lines runs exactly those
# import statements, once, and then forks a child per check, which runs the whole script. The
# child is a new process whose Python state is that of a cold `python script.py` after the
# script's own imports: nothing else was imported (but for a few standard-library modules the
# template needs) or run (imports alone do not start TensorFlow's runtime, whose threads a fork
# would not copy), and whatever the check loads, imports or registers dies with the child. Scripts
# whose first statement is not an import gain nothing and start cold, as do the checks of tests
# marked `cold_subprocess`, which keep the real `subprocess.run` path of `i2dl_keras.export` and
# `i2dl_keras.testing` covered. `fresh_python_start` forks such a child without waiting for it,
# from a template of imports the caller names, so that several run side by side (a cluster of
# workers, each with an environment of its own).

_TEMPLATE = r"""
import os, sys
protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # what the imports print goes to the template's log, not into the protocol
exec(compile(sys.argv[1], "<imports>", "exec"), {"__name__": "__template__"})
import atexit, json, signal, traceback, types
protocol_out.write("ready\n")
def report_exit(pid):
    _, status = os.waitpid(pid, 0)
    protocol_out.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
for line in sys.stdin:
    request = json.loads(line)
    if "wait" in request:  # for a child started detached
        report_exit(request["wait"])
        continue
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if request["detach"]:
                os.setsid()  # a process group of its own, killed as one
            signal.signal(signal.SIGINT, signal.default_int_handler)
            protocol_out.close()
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC), 1)
            if request["stderr"] == request["stdout"]:
                os.dup2(1, 2)
            else:
                os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC), 2)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = request["argv"]
            sys.path[0] = request["path0"]
            main = types.ModuleType("__main__")
            if request["file"] is not None:
                main.__file__ = request["file"]
            sys.modules["__main__"] = main
            exec(compile(request["source"], request["file"] or "<string>", "exec"), main.__dict__)
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                atexit._run_exitfuncs()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    protocol_out.write(json.dumps({"pid": pid}) + "\n")
    if not request["detach"]:
        report_exit(pid)
"""


def _leading_imports(source: str) -> str:
    """The script's first statements, as long as they are plain imports (else `""`)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return ""
    lines = []
    for node in body:
        if isinstance(node, ast.Import) or (
            isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__"
        ):
            lines.append(ast.get_source_segment(source, node))
        else:
            break
    return "\n".join(lines)


class _Template:
    """A warm process that ran `imports` under `env` and forks a child per script."""

    def __init__(self, imports: str, env: dict):
        self.workdir = tempfile.mkdtemp(prefix="fresh-python-")
        self.log = Path(self.workdir) / "template.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _TEMPLATE, imports],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=self.workdir,
            )
        self.buffer = b""
        self.lock = threading.Lock()
        if self._readline(time.monotonic() + 300) != "ready":
            self.close()
            raise RuntimeError(f"the template process did not start:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def _readline(self, deadline: float) -> str | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the template process died:\n{self._log_tail()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def _send(self, message: dict):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def _exit_code(self, pid: int, timeout: float | None, kill) -> int:
        """Child `pid`'s return code as the template reports it; `kill`s it after `timeout`."""
        line = self._readline(time.monotonic() + (timeout if timeout is not None else 1e9))
        if line is None:
            kill(pid, signal.SIGKILL)
            self._readline(time.monotonic() + 60)
            raise subprocess.TimeoutExpired(str(pid), timeout)
        return json.loads(line)["returncode"]

    def run(self, request: dict, timeout: float | None) -> int:
        """Runs `request` in a forked child; its return code (raises TimeoutExpired)."""
        with self.lock:
            self._send({**request, "detach": False})
            pid = json.loads(self._readline(time.monotonic() + 60))["pid"]
            try:
                return self._exit_code(pid, timeout, os.kill)
            except subprocess.TimeoutExpired:
                raise subprocess.TimeoutExpired(request["argv"], timeout) from None

    def start(self, request: dict) -> int:
        """Starts `request` in a forked child with a process group of its own; its pid."""
        with self.lock:
            self._send({**request, "detach": True})
            return json.loads(self._readline(time.monotonic() + 60))["pid"]

    def wait(self, pid: int, timeout: float | None) -> int:
        """The return code of the child `start` started; kills its group after `timeout`."""
        with self.lock:
            self._send({"wait": pid})
            return self._exit_code(pid, timeout, os.killpg)

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


_TEMPLATES: dict[tuple, _Template] = {}


def _template(imports: str, env: dict) -> _Template:
    # pytest names the running test in the environment; nothing reads it at import time (the
    # child gets the caller's value).
    env = {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}
    key = (imports, tuple(sorted(env.items())))
    template = _TEMPLATES.get(key)
    if template is None or template.proc.poll() is not None:
        template = _TEMPLATES[key] = _Template(imports, env)
    return template


def _request(args, *, env: dict, cwd, stdout: Path, stderr: Path) -> tuple[dict, str]:
    """The template's request to run `python *args` (`["-c", CODE, ...]` or `[SCRIPT, ...]`),
    and the script's leading import statements."""
    if args[0] == "-c":
        source, file, path0, argv = args[1], None, "", ["-c", *map(str, args[2:])]
    else:
        file = os.path.abspath(args[0])
        with tokenize.open(file) as script:  # the encoding Python itself would read
            source = script.read()
        path0, argv = os.path.dirname(file), list(map(str, args))
    for path in (stdout, stderr):
        Path(path).touch()
    request = dict(
        source=source,
        file=file,
        argv=argv,
        path0=path0,
        cwd=os.path.abspath(cwd),
        env=dict(env),
        stdout=str(stdout),
        stderr=str(stderr),
    )
    return request, _leading_imports(source)


def run_fresh_python(
    args,
    *,
    capture_output=False,
    text=False,
    timeout=None,
    env=None,
    cwd=None,
    check=False,
    **kwargs,
):
    """`subprocess.run([sys.executable, *args], ...)` where `args` is `["-c", CODE, ...]` or
    `[SCRIPT.py, ...]`, run in a child forked from a template that ran the script's first
    import statements; a script that does not start with imports runs cold."""
    cold = [sys.executable, *map(str, args)]
    env = dict(os.environ if env is None else env)
    cwd = cwd if cwd is not None else os.getcwd()
    with tempfile.TemporaryDirectory(prefix="fresh-python-run-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        request, imports = _request(args, env=env, cwd=cwd, stdout=out, stderr=err)
        warm = imports and capture_output and not kwargs
        if warm:
            returncode = _template(imports, env).run(request, timeout)
            stdout, stderr = out.read_bytes(), err.read_bytes()
    if not warm:
        return subprocess.run(
            cold,
            capture_output=capture_output,
            text=text,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=check,
            **kwargs,
        )
    if text:
        encoding = locale.getpreferredencoding(False)
        stdout, stderr = (s.decode(encoding).replace("\r\n", "\n") for s in (stdout, stderr))
    proc = subprocess.CompletedProcess(cold, returncode, stdout, stderr)
    if check:
        proc.check_returncode()
    return proc


class FreshProcess:
    """A script that `start_fresh_python` started, running beside the caller."""

    def __init__(self, template: _Template, pid: int):
        self.template, self.pid, self.returncode = template, pid, None

    def wait(self, timeout: float | None = None) -> int:
        """Its return code, once it exits; kills it when `timeout` passes (TimeoutExpired)."""
        if self.returncode is None:
            try:
                self.returncode = self.template.wait(self.pid, timeout)
            except subprocess.TimeoutExpired:
                self.returncode = -signal.SIGKILL  # killed, and reaped by the template
                raise
        return self.returncode

    def kill(self):
        """Kills its process group, unless it has exited already."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.wait()


def start_fresh_python(args, *, log: Path, env: dict, cwd: Path, imports: str, template_env: dict):
    """`subprocess.Popen([sys.executable, *args], stdout=log, stderr=STDOUT, env=env, cwd=cwd,
    start_new_session=True)`, forked from a template that ran `imports` under `template_env`:
    several scripts that differ in their arguments or environment (`env`, for the child alone)
    start warm from one template and run side by side."""
    request, _ = _request(args, env=env, cwd=cwd, stdout=log, stderr=log)
    template = _template(imports, template_env)
    return FreshProcess(template, template.start(request))


class _ForkingSubprocess:
    """Stands in for the `subprocess` module inside i2dl_keras.export and i2dl_keras.testing:
    their fresh-process checks (`python SCRIPT ...`) run forked; anything else as before."""

    def __getattr__(self, name):
        return getattr(subprocess, name)

    @staticmethod
    def run(args, **kwargs):
        if isinstance(args, list) and len(args) >= 2 and args[0] == sys.executable:
            if str(args[1]).endswith(".py") or args[1] == "-c":
                return run_fresh_python(args[1:], **kwargs)
        return subprocess.run(args, **kwargs)


_CHECKING_MODULES = (i2dl_keras.export, i2dl_keras.testing)


@pytest.fixture(autouse=True, scope="session")
def _fork_fresh_processes():
    # Session-wide, so that the exports of module and session fixtures fork too.
    with pytest.MonkeyPatch.context() as patch:
        for module in _CHECKING_MODULES:
            patch.setattr(module, "subprocess", _ForkingSubprocess())
        yield


@pytest.fixture(autouse=True)
def _cold_subprocess(request, monkeypatch):
    if request.node.get_closest_marker("cold_subprocess") is not None:
        for module in _CHECKING_MODULES:
            monkeypatch.setattr(module, "subprocess", subprocess)


@pytest.fixture(scope="session")
def fresh_python():
    """`fresh_python(args, **subprocess_run_kwargs)`: `python *args` in a fresh process, forked
    from a template that ran the script's first import statements (see above)."""
    return run_fresh_python


# `python -c CLI APP VERB ...` is `i2dl APP VERB ...`, in a form that forks warm (`-m` does not).
CLI = "import sys\nfrom i2dl_keras.apps import cli\nsys.exit(cli.main(sys.argv[1:]))"


@pytest.fixture(scope="session")
def cli_code() -> str:
    """`CLI`: the `-c` code of a fresh process that runs `i2dl` with its arguments."""
    return CLI


# The app trainings on real data run with oneDNN, as users' do, forked from a template that
# imported TensorFlow with it: they take less time that way than in the suite's own process.
@pytest.fixture
def train_with_onednn(tmp_path):
    """`train_with_onednn([APP, "train", ...])`: the run folder that `i2dl APP train ...
    --output-dir TMP` wrote, run in a fresh process whose TensorFlow uses oneDNN."""

    def train(argv: list[str]) -> Path:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"}
        args = ["-c", CLI, *argv, "--output-dir", str(tmp_path)]
        proc = run_fresh_python(args, capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        (run,) = (p for p in (tmp_path / argv[0]).glob("run-*") if p.is_dir())
        return run

    return train


@pytest.fixture(scope="session")
def fresh_python_start():
    """`fresh_python_start(args, log=, env=, cwd=, imports=, template_env=)`: `python *args`
    started beside the caller, forked from a template that ran `imports` (see above)."""
    return start_fresh_python


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cold_subprocess: fresh-process checks start a new interpreter, unforked"
    )
    if getattr(config.option, "loadscopereorder", False):
        # pytest-xdist's `--dist loadfile` would hand out the files with the most tests first;
        # `pytest_collection_modifyitems` below orders them by their time instead.
        config.option.loadscopereorder = False


# The files that take longest on the 2-core CI machine, longest first (measured with
# `--durations`). `--dist loadfile` hands out whole files in this order, then the others in
# collection order: with the long files first, both workers stay busy until the short files at
# the end run out, instead of one waiting while the other runs a long file handed out last.
# serving/test_rest.py builds the exports all serving tests share (serving/conftest.py), well
# before the other serving files start.
LONGEST_FILES_FIRST = (
    "tests/apps/test_transfer.py",
    "tests/apps/test_denoise.py",
    "tests/apps/test_segmentation.py",
    "tests/apps/test_sentiment.py",
    "tests/test_readme.py",
    "tests/apps/test_api.py",
    "tests/apps/test_digits.py",
    "tests/apps/test_distributed.py",
    "tests/test_examples.py",
    "tests/models/test_char_language_model.py",
    "tests/apps/test_faults.py",
    "tests/models/test_mobilenet_unet.py",
    "tests/serving/test_rest.py",
    "tests/data/test_data_text_stream.py",
    "tests/apps/test_global_state.py",
    "tests/models/test_saving.py",
    "tests/layers/test_saving.py",
    "tests/test_char_lm_example.py",
    "tests/models/test_backbones.py",
    "tests/test_export_tflite.py",
    "tests/test_export.py",
    "tests/serving/test_cli.py",
    "tests/apps/test_class_weight.py",
    "tests/apps/test_cli.py",
)


def pytest_collection_modifyitems(items):
    # A stable sort on the file's rank: each file's tests keep their order and stay together.
    rank = {path: i for i, path in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_sessionfinish(session, exitstatus):
    for template in _TEMPLATES.values():
        template.close()
