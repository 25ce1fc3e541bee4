"""The README's Python tour runs as written and prints what its comments promise."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_tour_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    script = tmp_path / "tour.py"
    script.write_text("\n".join(blocks))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "[[3.  4.  4.5]" in out and "[7.5 8.5 9. ]" in out
    assert "61706" in out and "[0 1]" in out and "4640" in out
    assert re.search(r"^28$", out, flags=re.M)
