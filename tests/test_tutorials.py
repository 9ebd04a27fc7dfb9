"""Execute every tutorial notebook (docs/tutorials/*.ipynb) top to bottom in a fresh kernel.

Each notebook runs in a new ``python3`` kernel whose working directory is a temporary
folder, so a notebook that writes a file there (it should use tempfile) leaves nothing in
the repository. A notebook whose framework is not installed is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.xdist_group("notebooks")

TUTORIALS = Path(__file__).resolve().parent.parent / "docs" / "tutorials"

NOTEBOOKS = {
    "01-textbook-to-diagnosis.ipynb": ("jinja2",),  # report.to_html
    "02-layers.ipynb": (),
    "03-pytorch.ipynb": ("torch",),
    "04-jax.ipynb": ("jax",),
    "05-large-models.ipynb": ("distributed",),
}


def test_every_notebook_is_listed() -> None:
    assert sorted(p.name for p in TUTORIALS.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_saved_with_outputs(name: str) -> None:
    """The documentation site renders the notebooks as saved: every code cell has run."""
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    counts = [cell.execution_count for cell in code]
    assert None not in counts, f"{name}: cells never executed: {counts}"
    assert counts == sorted(counts), f"{name}: cells executed out of order: {counts}"
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{name}: saved with an error output: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name: str, tmp_path: Path) -> None:
    for module in NOTEBOOKS[name]:
        pytest.importorskip(module)
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{name}: a cell raised\n{error}", pytrace=False)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    assert not list(tmp_path.iterdir()), f"{name} left files in its working directory"
