"""Run the example notebooks end to end with the small settings."""

import itertools
import re
from pathlib import Path

import nbformat
import pytest
import rasterio
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[1] / 'examples'


def read_notebook(name: str) -> nbformat.NotebookNode:
    """Read a notebook of examples/.

    Args:
        name: File name of the notebook.

    Returns:
        The notebook.
    """
    notebook: nbformat.NotebookNode = nbformat.read(  # type: ignore[no-untyped-call]
        EXAMPLES / name, as_version=4
    )
    return notebook


def run_notebook(
    name: str, output: Path, monkeypatch: pytest.MonkeyPatch
) -> nbformat.NotebookNode:
    """Execute a notebook from examples/ with STARS_SMALL=1.

    Args:
        name: File name of the notebook.
        output: Folder the notebook writes into (STARS_OUTPUT).
        monkeypatch: Sets the environment the kernel inherits.

    Returns:
        The executed notebook, outputs included.
    """
    monkeypatch.setenv('STARS_SMALL', '1')
    monkeypatch.setenv('STARS_OUTPUT', str(output))
    notebook = read_notebook(name)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name='python3',
        resources={'metadata': {'path': str(EXAMPLES)}},
    )
    client.execute()
    return notebook


def outputs_of(notebook: nbformat.NotebookNode) -> tuple[str, int]:
    """All text printed by a notebook and the number of images it shows.

    Args:
        notebook: An executed notebook.

    Returns:
        The concatenated stream / text outputs and the count of PNG outputs.
    """
    text: list[str] = []
    images = 0
    for cell in notebook.cells:
        for item in cell.get('outputs', []):
            if item.get('output_type') == 'stream':
                text.append(item['text'])
            data = item.get('data', {})
            text.append(data.get('text/plain', ''))
            images += 'image/png' in data
    return '\n'.join(text), images


def test_notebooks_are_committed_without_outputs() -> None:
    names = sorted(path.name for path in EXAMPLES.glob('*.ipynb'))
    assert names == [
        '01_quickstart.ipynb',
        '02_missing_modalities.ipynb',
        '03_geotiff_inference.ipynb',
    ]
    for name in names:
        notebook = read_notebook(name)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == 'code':
                assert cell.outputs == [], f'{name} has outputs; clear them'
                assert cell.execution_count is None, f'{name}: clear execution counts'


@pytest.mark.slow
def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_notebook('01_quickstart.ipynb', tmp_path, monkeypatch)
    text, images = outputs_of(notebook)
    scene = tmp_path / 'scene'
    for relative in ('optical', 'sar', 'dsm', 'mask'):
        assert list((scene / relative).glob('*.tif')), f'no {relative} raster written'
    # The sampled window carries every modality, the label and the flags.
    for key in ('image_optical', 'image_sar', 'image_dsm', 'mask', 'available'):
        assert key in text
    # The saved per-scenario table has one row per non-empty subset of modalities.
    table = (tmp_path / 'scenario_table.txt').read_text().splitlines()
    rows = {line.split()[0] for line in table[2:]}
    modalities = ('optical', 'sar', 'dsm')
    expected = {
        '+'.join(subset)
        for size in range(1, 4)
        for subset in itertools.combinations(modalities, size)
    }
    assert rows == expected
    assert 'mIoU averaged over the scenarios' in text
    assert images >= 3  # the modalities, one paired window, the mIoU chart
    assert list((tmp_path / 'runs').rglob('events.out.tfevents.*'))


@pytest.mark.slow
def test_missing_modalities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_notebook('02_missing_modalities.ipynb', tmp_path, monkeypatch)
    text, images = outputs_of(notebook)
    # One accuracy line per scenario: all modalities, then each one left out.
    for title in ('all', 'no optical', 'no sar', 'no dsm'):
        pattern = rf'^{title} +pixel accuracy on this batch: \d+\.\d %$'
        assert re.search(pattern, text, re.MULTILINE), f'no accuracy for {title!r}'
    assert 'optical+sar+dsm' in text
    assert images >= 3  # two patches and the IoU bars


@pytest.mark.slow
def test_geotiff_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_notebook('03_geotiff_inference.ipynb', tmp_path, monkeypatch)
    _, images = outputs_of(notebook)
    assert images >= 1
    assert (tmp_path / 'stars.ckpt').is_file()
    output = tmp_path / 'prediction_sar_dsm.tif'
    sar = next((tmp_path / 'new-scene' / 'sar').glob('*.tif'))
    with rasterio.open(output) as src, rasterio.open(sar) as reference:
        assert src.crs == reference.crs
        assert src.transform == reference.transform
        assert src.count == 1
        classes = src.read(1, masked=True)
        assert classes.count() > 0
        assert int(classes.max()) < 6  # six synthetic classes
