"""The benchmark datamodules: loaders, coverage, statistics cache, CLI."""

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
import shapely
import torch
import yaml
from torchgeo.samplers import GeoSampler

from torchgeo_stars.datamodules import (
    BenchmarkDataModule,
    EarthMissDataModule,
    MultimodalDataModule,
    PotsdamDataModule,
    VaihingenDataModule,
    WHUOPTSARDataModule,
)
from torchgeo_stars.datasets import (
    BenchmarkDataset,
    PairedDataset,
    TileDataset,
    TileWindow,
)
from torchgeo_stars.datasets.keys import AVAILABLE, MASK, image_key
from torchgeo_stars.errors import DataError
from torchgeo_stars.main import main

from ..datasets.benchmark_fixtures import copy_fixture, root_of
from ..tasks.helpers import TINY_MODEL_YAML

ROOT = Path(__file__).resolve().parents[2]
MODULES: dict[type[BenchmarkDataModule], str] = {
    PotsdamDataModule: 'potsdam.yaml',
    VaihingenDataModule: 'vaihingen.yaml',
    WHUOPTSARDataModule: 'whu_opt_sar.yaml',
    EarthMissDataModule: 'earthmiss.yaml',
}
PATCH = 16


def split_of(dm: BenchmarkDataModule, split: str) -> BenchmarkDataset:
    """The dataset of a split, after setup."""
    dataset = getattr(dm, f'{split}_dataset')
    assert isinstance(dataset, BenchmarkDataset)
    return dataset


def boxes(sampler: object) -> list[shapely.Polygon]:
    """The windows of a geographic sampler, as boxes."""
    assert isinstance(sampler, GeoSampler)
    out = []
    for query in sampler:
        assert isinstance(query, tuple)
        slices: tuple[Any, ...] = query
        x, y = slices[0], slices[1]
        assert isinstance(x, slice)
        assert isinstance(y, slice)
        out.append(shapely.box(x.start, y.start, x.stop, y.stop))
    return out


def footprint(dataset: BenchmarkDataset) -> shapely.Geometry:
    """The union of a georeferenced dataset's files."""
    assert isinstance(dataset, PairedDataset)
    return dataset.index.geometry.union_all()


def datamodule(
    cls: type[BenchmarkDataModule], root: Path | None = None, **kwargs: Any
) -> BenchmarkDataModule:
    options: dict[str, Any] = {
        'batch_size': 2,
        'patch_size': PATCH,
        'statistics_samples': 4,
        'cache_statistics': False,
    }
    options.update(kwargs)
    return cls(str(root or root_of(cls.dataset_type)), **options)


@pytest.mark.parametrize('cls', list(MODULES))
def test_train_val_test_loaders_give_patches_of_every_modality(
    cls: type[BenchmarkDataModule],
) -> None:
    dm = datamodule(cls)
    dm.setup('fit')
    dm.setup('test')
    bands = cls.dataset_type.num_bands_of()
    assert dm.modalities == bands
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        for name, count in bands.items():
            assert batch[image_key(name)].shape == (2, count, PATCH, PATCH)
        assert batch[MASK].shape == (2, PATCH, PATCH)
        assert batch[AVAILABLE].shape == (2, len(bands))
    # The splits are the datasets' own, with no tile in two of them.
    splits = [split_of(dm, s) for s in ('train', 'val', 'test')]
    assert [d.split for d in splits] == ['train', 'val', 'test']
    tiles = [set(d.tiles) for d in splits]
    assert all(tiles)
    assert not tiles[0] & tiles[1]
    assert not tiles[0] & tiles[2]
    assert not tiles[1] & tiles[2]


@pytest.mark.parametrize(
    'cls', [VaihingenDataModule, WHUOPTSARDataModule, EarthMissDataModule]
)
def test_val_and_test_windows_cover_every_pixel_of_their_tiles(
    cls: type[BenchmarkDataModule],
) -> None:
    dm = datamodule(cls)
    dm.setup('fit')
    dm.setup('test')
    for dataset, sampler in (
        (split_of(dm, 'val'), dm.val_sampler),
        (split_of(dm, 'test'), dm.test_sampler),
    ):
        assert isinstance(dataset, TileDataset)
        counts = [
            np.zeros(dataset.tile_shape(i), dtype=int) for i in range(len(dataset))
        ]
        for window in sampler or []:
            assert isinstance(window, TileWindow)
            counts[window.tile][
                window.row : window.row + PATCH, window.col : window.col + PATCH
            ] += 1
            assert window.row + PATCH <= counts[window.tile].shape[0]
            assert window.col + PATCH <= counts[window.tile].shape[1]
        assert all((c >= 1).all() for c in counts)


def test_potsdam_val_windows_cover_every_val_tile() -> None:
    dm = datamodule(PotsdamDataModule)
    dm.setup('fit')
    windows = shapely.union_all(boxes(dm.val_sampler))
    tiles = footprint(split_of(dm, 'val'))
    assert tiles.area > 0
    assert windows.buffer(1e-6).covers(tiles)


def test_potsdam_training_patches_stay_in_the_training_tiles() -> None:
    dm = datamodule(PotsdamDataModule, length=20)
    dm.setup('fit')
    train = footprint(split_of(dm, 'train'))
    val = footprint(split_of(dm, 'val'))
    windows = boxes(dm.train_sampler)
    assert len(windows) == 20
    for box in windows:
        assert train.buffer(1e-6).covers(box)
        assert box.intersection(val).area < 1e-9


@pytest.mark.parametrize('cls', list(MODULES))
def test_batches_are_normalised_with_the_training_statistics(
    cls: type[BenchmarkDataModule],
) -> None:
    dm = datamodule(cls)
    dm.setup('fit')
    batch = next(iter(dm.val_dataloader()))
    normalised = dm.on_after_batch_transfer(dict(batch), 0)
    for name, stats in dm.statistics.items():
        mean = torch.tensor(stats.mean).view(-1, 1, 1)
        std = torch.tensor(stats.std).view(-1, 1, 1)
        key = image_key(name)
        torch.testing.assert_close(normalised[key], (batch[key] - mean) / std)
    assert torch.equal(normalised[MASK], batch[MASK])


def test_statistics_are_cached_beside_the_data_and_reused(tmp_path: Path) -> None:
    root = copy_fixture(WHUOPTSARDataModule.dataset_type, tmp_path)
    first = datamodule(WHUOPTSARDataModule, root, cache_statistics=True)
    first.setup('fit')
    cache = root / 'torchgeo_stars_statistics.json'
    records = json.loads(cache.read_text())
    assert len(records) == 1
    assert records[0]['key']['tiles'] == sorted(split_of(first, 'train').tiles)
    assert records[0]['statistics']['sar'] == first.statistics['sar'].to_dict()
    # A marked value in the cache is what the next run uses: nothing recomputed.
    records[0]['statistics']['sar']['mean'] = [123.25]
    cache.write_text(json.dumps(records))
    again = datamodule(WHUOPTSARDataModule, root, cache_statistics=True)
    again.setup('fit')
    assert again.statistics['sar'].mean == (123.25,)
    assert again.statistics['optical'] == first.statistics['optical']
    # Other estimation settings are another record.
    other = datamodule(WHUOPTSARDataModule, root, cache_statistics=True, seed=1)
    other.setup('fit')
    assert other.statistics['sar'].mean != (123.25,)
    assert len(json.loads(cache.read_text())) == 2


def test_given_statistics_are_used_and_the_rest_estimated(tmp_path: Path) -> None:
    given = {'optical': {'mean': [1.0, 2.0, 3.0], 'std': [4.0, 5.0, 6.0]}}
    dm = datamodule(EarthMissDataModule, statistics=given)
    dm.setup('validate')
    assert dm.statistics['optical'].mean == (1.0, 2.0, 3.0)
    assert dm.statistics['sar'].num_bands == 1
    assert not (root_of(dm.dataset_type) / 'torchgeo_stars_statistics.json').exists()


def test_a_missing_root_fails_at_setup_with_one_line(tmp_path: Path) -> None:
    dm = datamodule(PotsdamDataModule, tmp_path / 'potsdam')
    with pytest.raises(DataError, match='is not a folder') as info:
        dm.setup('fit')
    assert '\n' not in str(info.value)


def test_datamodule_plot_uses_the_dataset_classes() -> None:
    dm = datamodule(EarthMissDataModule)
    assert dm.quicklook_bands == {}
    dm.setup('validate')
    assert dm.quicklook_bands == {'optical': (0, 1, 2)}  # red, green, blue
    dataset = split_of(dm, 'val')
    assert isinstance(dataset, TileDataset)
    sample = dataset[0]
    figure = dm.plot(sample)
    assert figure is not None
    assert [a.get_title() for a in figure.axes] == ['optical', 'sar', 'label']
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(dm.dataset_type.classes)
    plt.close(figure)


@pytest.mark.parametrize('cls', list(MODULES))
def test_configs_match_their_datamodules(cls: type[BenchmarkDataModule]) -> None:
    config = yaml.safe_load((ROOT / 'examples' / 'configs' / MODULES[cls]).read_text())
    model, data = config['model']['init_args'], config['data']
    assert data['class_path'] == cls.__name__
    dataset = cls.dataset_type
    assert model['modalities'] == dataset.num_bands_of()
    assert model['num_classes'] == len(dataset.classes)
    assert len(model['class_names']) == len(dataset.classes)
    assert [tuple(c) for c in model['class_colors']] == list(dataset.colors)
    assert model['ignore_index'] == 255


def fast_dev_run_overrides(tmp_path: Path) -> list[str]:
    """CLI overrides for a tiny, quiet one-batch fit or test on a fixture."""
    return [
        '--data.init_args.patch_size',
        str(PATCH),
        '--data.init_args.batch_size',
        '2',
        '--data.init_args.num_workers',
        '0',
        '--data.init_args.statistics_samples',
        '4',
        '--model.init_args.model_kwargs',
        TINY_MODEL_YAML,
        '--trainer.fast_dev_run',
        'true',
        '--trainer.accelerator',
        'cpu',
        '--trainer.default_root_dir',
        str(tmp_path),
        '--trainer.enable_progress_bar',
        'false',
    ]


@pytest.mark.slow
@pytest.mark.parametrize('cls', list(MODULES))
def test_fit_and_test_fast_dev_run_with_the_config_on_the_fixture(
    cls: type[BenchmarkDataModule], tmp_path: Path
) -> None:
    root = copy_fixture(cls.dataset_type, tmp_path)
    overrides = [
        '--config',
        str(ROOT / 'examples' / 'configs' / MODULES[cls]),
        '--data.init_args.root',
        str(root),
        *fast_dev_run_overrides(tmp_path),
    ]
    assert main(['fit', *overrides]) == 0
    assert (root / 'torchgeo_stars_statistics.json').exists()
    # The test split, evaluated on every modality subset.
    assert main(['test', *overrides]) == 0


def test_multimodal_datamodule_plot_shows_its_paired_modalities() -> None:
    scene = ROOT / 'tests' / 'data' / 'synthetic' / 'scene'
    dm = MultimodalDataModule(
        {name: str(scene / name) for name in ('optical', 'sar', 'dsm')},
        str(scene / 'mask'),
        ignore_index=255,
        patch_size=PATCH,
        batch_size=2,
    )
    with pytest.raises(RuntimeError, match='setup'):
        dm.plot({})
    assert dm.quicklook_bands == {}
    dm.setup('validate')
    # The synthetic optical bands are named blue, green, red, nir
    assert dm.quicklook_bands == {'optical': (2, 1, 0)}
    sample = next(iter(dm.val_dataloader()))
    single = {key: value[0] for key, value in sample.items()}
    figure = dm.plot(single, suptitle='window')
    assert [a.get_title() for a in figure.axes] == ['optical', 'sar', 'dsm', 'label']
    assert figure.get_suptitle() == 'window'
    plt.close(figure)


def test_potsdam_loads_and_normalises_the_ndsm_when_asked(tmp_path: Path) -> None:
    root = copy_fixture(PotsdamDataModule.dataset_type, tmp_path)
    dm = datamodule(
        PotsdamDataModule, root, modalities=['ndsm', 'optical'], cache_statistics=True
    )
    assert dm.modalities == {'optical': 4, 'ndsm': 1}
    dm.setup('fit')
    assert set(dm.statistics) == {'optical', 'ndsm'}
    # The nDSM statistics are those of the JPEG pixels (0..255, the fixture's
    # class * 30 + row), cached beside the data with the others.
    jpegs = sorted((root / '1_DSM_normalisation').glob('*.jpg'))
    low = min(float(np.asarray(plt.imread(p)).min()) for p in jpegs)
    high = max(float(np.asarray(plt.imread(p)).max()) for p in jpegs)
    (mean,) = dm.statistics['ndsm'].mean
    assert low < mean < high
    assert dm.statistics['ndsm'].std[0] > 1
    cached = json.loads((root / 'torchgeo_stars_statistics.json').read_text())
    assert cached[0]['statistics']['ndsm'] == dm.statistics['ndsm'].to_dict()
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        batch = next(iter(loader))
        assert batch[image_key('ndsm')].shape == (2, 1, PATCH, PATCH)
        assert image_key('dsm') not in batch
        assert batch[AVAILABLE].shape == (2, 2)
        normalised = dm.on_after_batch_transfer(dict(batch), 0)
        torch.testing.assert_close(
            normalised[image_key('ndsm')],
            (batch[image_key('ndsm')] - mean) / dm.statistics['ndsm'].std[0],
        )


@pytest.mark.slow
def test_potsdam_config_fits_with_the_ndsm(tmp_path: Path) -> None:
    root = copy_fixture(PotsdamDataModule.dataset_type, tmp_path)
    overrides = [
        '--config',
        str(ROOT / 'examples' / 'configs' / 'potsdam.yaml'),
        '--data.init_args.root',
        str(root),
        '--data.init_args.modalities',
        '[optical, dsm, ndsm]',
        '--model.init_args.modalities',
        '{optical: 4, dsm: 1, ndsm: 1}',
        *fast_dev_run_overrides(tmp_path),
    ]
    assert main(['fit', *overrides]) == 0
    cached = json.loads((root / 'torchgeo_stars_statistics.json').read_text())
    assert 'ndsm' in cached[0]['statistics']
