"""Run the example notebooks end to end with the small settings."""

import inspect
import itertools
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import lightning.pytorch.callbacks
import nbformat
import numpy as np
import pytest
import rasterio
import yaml
from nbclient import NotebookClient

import torchgeo_stars
import torchgeo_stars.datamodules
from torchgeo_stars.datamodules.multimodal import MODALITY_CLASSES
from torchgeo_stars.datasets import (
    ConfigurableRaster,
    MaskRaster,
    ModalityRaster,
    Potsdam,
)
from torchgeo_stars.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / 'examples'
CONFIGS = EXAMPLES / 'configs'


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
        '04_bring_your_own_data.ipynb',
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


def parameters(cls: type) -> set[str]:
    """Keyword arguments the ``__init__`` of a class or its bases accept.

    Args:
        cls: A class.

    Returns:
        The parameter names, ``self`` and ``**kwargs`` left out.
    """
    names: set[str] = set()
    for base in cls.__mro__:
        if '__init__' not in vars(base):
            continue
        for parameter in inspect.signature(base.__init__).parameters.values():  # type: ignore[misc]
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                names.add(parameter.name)
    return names - {'self'}


@pytest.mark.parametrize('name', ['optical_sar.yaml', 'optical_dsm.yaml'])
def test_layout_configs_name_existing_classes_and_arguments(name: str) -> None:
    config = yaml.safe_load((CONFIGS / name).read_text())
    task_class = getattr(torchgeo_stars, config['model']['class_path'])
    data_class = getattr(torchgeo_stars.datamodules, config['data']['class_path'])
    model_args, data_args = config['model']['init_args'], config['data']['init_args']
    assert set(model_args) <= parameters(task_class)
    assert set(data_args) <= parameters(data_class)
    for callback in config['trainer']['callbacks']:
        module, _, attribute = callback['class_path'].rpartition('.')
        assert module == 'lightning.pytorch.callbacks'
        assert hasattr(lightning.pytorch.callbacks, attribute)
    # The model's modalities are the data's, in the same order.
    assert list(model_args['modalities']) == list(data_args['paths'])
    # Every layout names a modality (or the mask) and arguments its class takes.
    for target, layout in data_args['layouts'].items():
        assert target in data_args['paths'] or target == 'mask'
        cls = MaskRaster if target == 'mask' else MODALITY_CLASSES.get(target)
        allowed = parameters(cls or ModalityRaster) | parameters(ConfigurableRaster)
        assert set(layout) <= allowed, f'{name}: unknown layout keys for {target}'
    if 'class_names' in model_args:
        assert len(model_args['class_names']) == model_args['num_classes']
    # LightningCLI validates every value against the signatures.
    with pytest.raises(SystemExit) as exit_info:
        main(['fit', '--config', str(CONFIGS / name), '--print_config'])
    assert exit_info.value.code == 0


#: ISPRS Potsdam / Vaihingen colour code, in the class order of the loaders.
ISPRS_COLOURS = list(Potsdam.colors)


def batch_shapes(text: str, title: str) -> dict[str, tuple[int, ...]]:
    """Shapes printed by the notebook's ``show_batch``.

    Args:
        text: The notebook's printed output.
        title: The layout's title.

    Returns:
        Sample key to its batched shape.
    """
    pattern = rf'^{re.escape(title)} batch: (\w+) +\(([\d, ]+)\)'
    return {
        key: tuple(int(v) for v in shape.split(','))
        for key, shape in re.findall(pattern, text, re.MULTILINE)
    }


def crs_of(path: Path) -> str:
    """CRS of a raster.

    Args:
        path: The raster.

    Returns:
        Its CRS as a string.
    """
    with rasterio.open(path) as src:
        return str(src.crs.to_string())


def patch_means(folder: Path, band: str, crs: str) -> list[float]:
    """Mean of one band's pixels in each patch of a BigEarthNet folder in *crs*.

    Args:
        folder: Folder of patch folders.
        band: Band suffix of the file names.
        crs: Only patches in this CRS count.

    Returns:
        One mean per patch.
    """
    means = []
    for patch in sorted(folder.iterdir()):
        with rasterio.open(next(patch.glob(f'*_{band}.tif'))) as src:
            if src.crs.to_string() == crs:
                means.append(float(src.read(1).astype('float64').mean()))
    return means


@pytest.mark.slow
def test_bring_your_own_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = run_notebook('04_bring_your_own_data.ipynb', tmp_path, monkeypatch)
    text, images = outputs_of(notebook)
    assert images >= 1

    # The real patches were extracted from the package: 12 band files per
    # Sentinel-2 patch, VV and VH per Sentinel-1 patch.
    s2_root = tmp_path / 'bigearthnet' / 'BigEarthNet-S2-Example'
    s1_root = tmp_path / 'bigearthnet' / 'BigEarthNet-S1-Example'
    s2_patches = sorted(p for p in s2_root.iterdir() if p.is_dir())
    s1_patches = sorted(p for p in s1_root.iterdir() if p.is_dir())
    assert s2_patches
    assert len(s1_patches) == len(s2_patches)
    for patch in s2_patches:
        assert len(list(patch.glob('*_B*.tif'))) == 12
    for patch in s1_patches:
        assert {p.name.rsplit('_', 1)[1] for p in patch.glob('*.tif')} == {
            'VV.tif',
            'VH.tif',
        }

    # The paired windows: six optical bands, VV + VH, the DSM, one spatial size.
    shapes = {
        key: tuple(int(v) for v in shape.split(','))
        for key, shape in re.findall(r'^(image_\w+) +\(([\d, ]+)\)', text, re.MULTILINE)
    }
    assert shapes['image_optical'][0] == 6
    assert shapes['image_sar'][0] == 2
    assert shapes['image_dsm'][0] == 1
    assert len({shape[1:] for shape in shapes.values()}) == 1

    # Statistics: finite, one value per band, named as read; computed on
    # whole-patch windows, so each mean is a mix of the patches' own means.
    statistics: dict[str, dict[str, list[Any]]] = json.loads(
        (tmp_path / 'statistics.json').read_text()
    )
    assert statistics['optical']['bands'] == ['B04', 'B03', 'B02', 'B08', 'B05', 'B11']
    assert statistics['sar']['bands'] == ['VV', 'VH']
    assert len(statistics['dsm']['mean']) == 1
    for stats in statistics.values():
        assert len(stats['mean']) == len(stats['std']) == len(stats['bands'])
        assert all(math.isfinite(v) for v in stats['mean'] + stats['std'])
        assert min(stats['std']) > 0
    crs_counts = Counter(crs_of(next(p.glob('*_B02.tif'))) for p in s2_patches)
    zone = crs_counts.most_common(1)[0][0]
    for modality, root, bands in (
        ('optical', s2_root, ['B04', 'B03', 'B02', 'B08']),
        ('sar', s1_root, ['VV', 'VH']),
    ):
        for band in bands:
            means = patch_means(root, band, zone)
            value = statistics[modality]['mean'][
                statistics[modality]['bands'].index(band)
            ]
            assert min(means) - 1e-3 <= value <= max(means) + 1e-3, band

    # Both layouts gave batches with the expected bands and one patch size.
    whu = batch_shapes(text, 'whu-opt-sar')
    potsdam = batch_shapes(text, 'potsdam')
    assert whu['image_optical'][1] == 4
    assert whu['image_sar'][1] == 1
    assert potsdam['image_optical'][1] == 4
    assert potsdam['image_dsm'][1] == 1
    for shapes_of in (whu, potsdam):
        size = shapes_of['mask'][1:]
        assert len(size) == 2
        assert all(shape[2:] == size for k, shape in shapes_of.items() if 'image' in k)

    # The colour-coded Potsdam labels were converted to class indices on the
    # orthophotos' grids.
    potsdam_root = tmp_path / 'potsdam'
    labels = sorted((potsdam_root / '5_Labels_all').glob('top_potsdam_*_label.tif'))
    assert labels
    for label in labels:
        tile = label.name.removeprefix('top_potsdam_').removesuffix('_label.tif')
        ortho = potsdam_root / '4_Ortho_RGBIR' / f'top_potsdam_{tile}_RGBIR.tif'
        converted = potsdam_root / '5_Labels_all_index' / label.name
        with rasterio.open(label) as src:
            rgb = src.read()
        expected = np.full(rgb.shape[1:], 255, dtype=np.uint8)
        for index, colour in enumerate(ISPRS_COLOURS):
            expected[(rgb == np.array(colour)[:, None, None]).all(axis=0)] = index
        with rasterio.open(converted) as src, rasterio.open(ortho) as reference:
            assert src.count == 1
            assert src.crs == reference.crs
            assert src.transform == reference.transform
            classes = src.read(1)
        np.testing.assert_array_equal(classes, expected)
        assert (classes == 255).any()
        assert len(np.unique(classes)) > 2

    # Both configs ran with their layouts unchanged, and their modalities match.
    for name in ('whu_opt_sar_layout.yaml', 'potsdam_layout.yaml'):
        assert f'{name}: fit with --trainer.fast_dev_run finished with status 0' in text
    assert (
        "config modalities: {'optical': 4, 'dsm': 1} | data: {'optical': 4, 'dsm': 1}"
        in text
    )
