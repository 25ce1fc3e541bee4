"""The example notebook runs top to bottom in a real Jupyter kernel and shows what it promises."""

import ast
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path_factory.mktemp("notebook")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute(env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"})  # as a user's kernel runs
    return notebook, work


def _outputs(notebook):
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def _result(notebook, source_start):
    """The value a cell displayed, parsed back from its text form."""
    (cell,) = [c for c in notebook.cells if c.source.startswith(source_start)]
    (out,) = [o for o in cell.outputs if o.output_type == "execute_result"]
    return out.data["text/plain"]


def test_no_cell_fails(executed):
    notebook, _ = executed
    assert not [o for o in _outputs(notebook) if o.output_type == "error"]


def test_the_report_figures_show_inline(executed):
    notebook, _ = executed
    images = [o for o in _outputs(notebook) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # training curves, confusion matrix, misclassified images


def test_predictions_carry_class_names(executed):
    notebook, work = executed
    digit = ast.literal_eval(_result(notebook, "from sklearn.datasets"))
    assert digit["input"] == "my_digit.png" and digit["label"] in [str(i) for i in range(10)]
    assert digit["label"] == max(digit["probabilities"], key=digit["probabilities"].get)
    texts = ast.literal_eval(_result(notebook, "text_run = sentiment.train"))
    assert [t["input"] for t in texts] == ["a gorgeous, moving film", "dull and lifeless"]
    assert all(t["label"] in t["probabilities"] for t in texts)
    assert sorted(p.name for p in (work / "saved_models").iterdir()) == ["digits", "sentiment"]
    assert (work / "saved_models" / "digits" / "serving" / "1" / "saved_model.pb").is_file()
