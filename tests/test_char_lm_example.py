"""examples/char_lm.py trains, samples at each temperature and beats the unigram baseline."""

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "char_lm.py"


def test_char_lm_example_runs_on_a_tiny_text(tmp_path):
    # Lines whose characters follow each other almost surely: a model learns them in seconds.
    text = tmp_path / "lines.txt"
    text.write_text("".join(f"abcabc {w}\n" for w in ["ab", "ba", "ca"] * 30), encoding="latin-1")
    command = [sys.executable, str(SCRIPT), str(text), "--lines", "80", "--epochs", "8"]
    command += ["--units", "16", "--embedding-dim", "8", "--sequence-length", "16"]
    command += ["--batch-size", "16", "--learning-rate", "0.05", "--length", "12"]
    command += ["--temperatures", "0", "1", "--seed-text", "abc"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "72 training lines, 8 held out" in out
    samples = re.findall(r"--- temperature (\S+) ---\n(.*)", out)
    assert [t for t, _ in samples] == ["0", "1"]
    # The greedy continuation of "abc" follows the training lines.
    assert samples[0][1].startswith("abcabc ")
    model_ppl = float(re.search(r"held-out perplexity per character: ([\d.]+)", out)[1])
    unigram = float(re.search(r"unigram baseline perplexity: ([\d.]+)", out)[1])
    assert unigram > 4.0 and model_ppl < 0.5 * unigram


def test_char_lm_example_rejects_a_missing_path(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "absent.txt")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr
