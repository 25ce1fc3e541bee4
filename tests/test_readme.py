"""The README's Python examples run as written and print what their comments promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = r"```python\n(.*?)```"
BOUNDARY = "--- end of a README block ---"


def _run(code: str, cwd: Path, timeout: float) -> str:
    script = cwd / "example.py"
    script.write_text(code)
    # With oneDNN, as a reader's Python runs (the suite turns it off: tests/conftest.py).
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="1")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_readme_python_tour_runs(tmp_path):
    text = re.sub(r"<!-- from-python -->\n" + BLOCK, "", README.read_text(), flags=re.S)
    blocks = re.findall(BLOCK, text, flags=re.S)
    assert blocks, "the README has no Python example"
    out = _run("\n".join(blocks), tmp_path, 300)
    assert "[[3.  4.  4.5]" in out and "[7.5 8.5 9. ]" in out
    assert "61706" in out and "[0 1]" in out and "4640" in out
    assert re.search(r"^28$", out, flags=re.M)


@pytest.mark.slow
def test_readme_from_python_examples_run(tmp_path, shared_data):
    from PIL import Image

    digits_block, text_block = re.findall(
        r"<!-- from-python -->\n" + BLOCK, README.read_text(), flags=re.S
    )
    seven = np.zeros((28, 28), np.uint8)
    seven[6:9, 8:21] = 255
    seven[9:22, 17:20] = 255
    Image.fromarray(seven).save(tmp_path / "my_digit.png")
    text_block = text_block.replace("../shared/data", str(shared_data))
    # One Python session runs the section's blocks in order, as a reader would, each block in
    # a namespace of its own (a name one block forgets to import is not found in the other's):
    # one TensorFlow start instead of two. Then it prints the text run's held-out accuracy: the
    # block's quick look is also the real-text check of the sentiment app.
    script = "\n".join(
        f"block_{i} = {{'__name__': '__main__'}}\n"
        f"exec(compile({block!r}, 'README block {i}', 'exec'), block_{i})\n"
        f"print({BOUNDARY!r}, flush=True)"
        for i, block in enumerate((digits_block, text_block), start=1)
    )
    script += "\nprint(block_2['text_run'].metrics['accuracy'], block_2['text_run'].config.data)"
    out, lines, text_result = _run(script, tmp_path, 900).split(BOUNDARY + "\n")
    out = out.splitlines()
    # Training and export report their progress too; the example's own lines follow the first.
    start = next(i for i, line in enumerate(out) if re.match(r"0\.\d+ \['0', ", line))
    accuracy, names = out[start].split(" ", 1)
    assert 0.5 < float(accuracy) and names == str([str(i) for i in range(10)])
    label, probability = out[start + 1].split()
    assert label in names and 0.1 < float(probability) <= 1.0
    assert out[start + 2] == f"[{label}]", "model.predict picks what run.predict picked"
    assert (tmp_path / out[-1].strip()).joinpath("saved_model.pb").is_file()

    lines = lines.splitlines()
    assert [line.split()[0] for line in lines[-2:]] == ["pos", "neg"]
    # Held-out sentence polarity (1,600 sentences) after one epoch of one LSTM beside the
    # n-gram member.
    accuracy, data = text_result.split()
    assert data == str(shared_data / "rt-polarity") and float(accuracy) >= 0.72, text_result
