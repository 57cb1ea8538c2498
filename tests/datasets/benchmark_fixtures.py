"""Expected content of the benchmark fixtures (tests/data/<name>/data.py).

The expected class maps are rebuilt from the generators' own helpers, so the
tests check the loaders against the encoding the fixtures were written with.
"""

import importlib.util
import shutil
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np

from torchgeo_stars.datasets import WHUOPTSAR, EarthMiss, Potsdam, Vaihingen
from torchgeo_stars.datasets.benchmark import BenchmarkDataset

DATA = Path(__file__).resolve().parents[1] / 'data'
IGNORE = 255

#: Dataset class -> its fixture folder.
FOLDERS: dict[type[BenchmarkDataset], str] = {
    Potsdam: 'potsdam',
    Vaihingen: 'vaihingen',
    WHUOPTSAR: 'whu_opt_sar',
    EarthMiss: 'earthmiss',
}


@cache
def generator(name: str) -> ModuleType:
    """The fixture's data.py as a module."""
    spec = importlib.util.spec_from_file_location(
        f'fixture_{name}', DATA / name / 'data.py'
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def root_of(cls: type[BenchmarkDataset]) -> Path:
    """The fixture root of a dataset class."""
    return DATA / FOLDERS[cls]


def copy_fixture(cls: type[BenchmarkDataset], target: Path) -> Path:
    """A writable copy of a fixture (for missing-file and cache tests)."""
    root = target / FOLDERS[cls]
    shutil.copytree(root_of(cls), root, ignore=shutil.ignore_patterns('*.json'))
    return root


def expected_classes(cls: type[BenchmarkDataset], tile: str) -> np.ndarray:
    """The class indices a tile's label decodes to (ignore = 255).

    Args:
        cls: the dataset class.
        tile: the tile name as the dataset names it.

    Returns:
        (H, W) int64 classes.
    """
    if cls is Potsdam:
        classes: np.ndarray = generator('potsdam').class_map(tile)
        return classes
    if cls is Vaihingen:
        area = int(tile.rsplit('area', 1)[1])
        classes = generator('vaihingen').class_map(area)
        return classes
    if cls is WHUOPTSAR:
        module = generator('whu_opt_sar')
        left, right = module.tile_classes(tile)
        classes = np.full((module.HEIGHT, module.WIDTH), left, dtype=np.int64)
        classes[:, module.WIDTH // 2 :] = right
        classes[0] = IGNORE
        return classes
    module = generator('earthmiss')
    index = {f'{city}/{name}': i for city, name, i in module.images()}[tile]
    top, bottom = module.image_classes(index)
    classes = np.full((module.SIZE, module.SIZE), top, dtype=np.int64)
    classes[module.SIZE // 2 :] = bottom
    classes[:, -1] = IGNORE
    return classes
