"""MultimodalDataModule on the committed synthetic and multimodal fixtures."""

import itertools
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from rasterio.windows import from_bounds
from torch import Tensor
from torchgeo.datasets import GeoDataset, roi_split

from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets import (
    ModalityStatistics,
    OpticalRaster,
    compute_statistics,
)
from torchgeo_stars.errors import ConfigurationError, DataError

DATA = Path(__file__).resolve().parents[1] / 'data'
SCENE = DATA / 'synthetic' / 'scene'
MULTI = DATA / 'multimodal'
SCENE_PATHS = {name: str(SCENE / name) for name in ('optical', 'sar', 'dsm')}
MULTI_PATHS = {name: str(MULTI / name) for name in ('optical', 'sar', 'dsm')}
PATCH = 16
IGNORE = 255

Box = tuple[float, float, float, float]


def only_file(folder: Path) -> Path:
    (path,) = sorted(folder.glob('*.tif'))
    return path


def file_bounds(folder: Path) -> Box:
    with rasterio.open(only_file(folder)) as src:
        left, bottom, right, top = src.bounds
    return (left, bottom, right, top)


def windows(sampler: Any) -> list[Box]:
    """(xmin, ymin, xmax, ymax) of every window a sampler yields."""
    return [(x.start, y.start, x.stop, y.stop) for x, y, *_ in sampler]


def batches(
    datamodule: MultimodalDataModule, split: str
) -> Iterator[dict[str, Tensor]]:
    loader = getattr(datamodule, f'{split}_dataloader')()
    yield from loader


def on_grid(value: float, origin: float, res: float) -> bool:
    steps = (value - origin) / res
    return abs(steps - round(steps)) < 1e-6


def scene_datamodule(**kwargs: Any) -> MultimodalDataModule:
    options: dict[str, Any] = {
        'ignore_index': IGNORE,
        'batch_size': 4,
        'patch_size': PATCH,
    }
    options.update(kwargs)
    return MultimodalDataModule(SCENE_PATHS, str(SCENE / 'mask'), **options)


@pytest.fixture(scope='module')
def fitted() -> MultimodalDataModule:
    datamodule = scene_datamodule()
    datamodule.setup('fit')
    return datamodule


@pytest.fixture(scope='module')
def tested(fitted: MultimodalDataModule) -> MultimodalDataModule:
    datamodule = scene_datamodule(statistics=fitted.statistics)
    datamodule.setup('test')
    return datamodule


# --- splits ------------------------------------------------------------------


def test_stripes_tile_the_labelled_area_west_to_east(
    fitted: MultimodalDataModule,
) -> None:
    stripes = [fitted.stripes[name] for name in ('train', 'val', 'test')]
    # Labelled area = optical & SAR & DSM & labels; here bounded by labels and DSM
    labels, dsm = file_bounds(SCENE / 'mask'), file_bounds(SCENE / 'dsm')
    area = shapely.box(*labels) & shapely.box(*dsm)
    union = shapely.union_all([s.polygon for s in stripes])
    # Whole pixels inside the area, missing less than a pixel at each edge
    assert area.buffer(1e-6).contains(union)
    assert union.area > area.buffer(-10).area
    for first, second in itertools.pairwise(stripes):
        assert first.box[2] == second.box[0]  # consecutive, west to east
        assert (first.polygon & second.polygon).area == 0
    for stripe in stripes[1:]:
        assert stripe.pixels % PATCH == 0
        assert stripe.box[2] - stripe.box[0] == stripe.pixels * 10


def test_train_patches_stay_in_the_train_stripe(fitted: MultimodalDataModule) -> None:
    train = fitted.stripes['train'].polygon
    others = [fitted.stripes[n].polygon for n in ('val', 'test')]
    boxes = windows(fitted.train_sampler)
    assert len(boxes) >= 20
    optical_left, _, _, optical_top = file_bounds(SCENE / 'optical')
    for box in boxes:
        patch = shapely.box(*box)
        assert train.buffer(1e-6).contains(patch)
        assert all((patch & other).area == 0 for other in others)
        assert box[2] - box[0] == box[3] - box[1] == PATCH * 10
        # On the optical file's pixel grid, so optical is read without resampling
        assert on_grid(box[0], optical_left, 10)
        assert on_grid(box[1], optical_top, 10)


@pytest.mark.parametrize('split', ['val', 'test'])
def test_evaluation_grid_covers_its_stripe_only(
    fitted: MultimodalDataModule, tested: MultimodalDataModule, split: str
) -> None:
    datamodule = fitted if split == 'val' else tested
    stripe = datamodule.stripes[split]
    sampler = getattr(datamodule, f'{split}_sampler')
    boxes = windows(sampler)
    patches = [shapely.box(*box) for box in boxes]
    assert shapely.union_all(patches).contains(stripe.polygon)
    xmin, _, xmax, _ = stripe.box
    for box in boxes:
        assert xmin - 1e-6 <= box[0]
        assert box[2] <= xmax + 1e-6
    for other in ('train', 'val', 'test'):
        if other != split:
            neighbour = datamodule.stripes[other].polygon
            assert all((p & neighbour).area == 0 for p in patches)
    # Non-overlapping grid
    assert sum(p.area for p in patches) == pytest.approx(
        shapely.union_all(patches).area
    )


def test_y_split_runs_north_to_south(fitted: MultimodalDataModule) -> None:
    datamodule = scene_datamodule(split_axis='y', statistics=fitted.statistics)
    datamodule.setup('fit')
    train, val, test = (datamodule.stripes[n] for n in ('train', 'val', 'test'))
    assert train.box[1] == val.box[3]
    assert val.box[1] == test.box[3]
    assert train.box[3] > test.box[3]
    for box in windows(datamodule.train_sampler):
        assert box[1] >= train.box[1] - 1e-6
        assert box[3] <= train.box[3] + 1e-6
    for box in windows(datamodule.val_sampler):
        assert box[1] >= val.box[1] - 1e-6
        assert box[3] <= val.box[3] + 1e-6


# --- batches -----------------------------------------------------------------


def test_batch_keys_shapes_and_band_counts(fitted: MultimodalDataModule) -> None:
    batch = next(iter(fitted.train_dataloader()))
    size = 4
    for name in ('optical', 'sar', 'dsm'):
        with rasterio.open(only_file(SCENE / name)) as src:
            bands = src.count
        image = batch[f'image_{name}']
        assert image.shape == (size, bands, PATCH, PATCH)
        assert image.dtype == torch.float32
        assert fitted.modalities[name] == bands
    assert list(fitted.modalities) == ['optical', 'sar', 'dsm']
    assert batch['mask'].shape == (size, PATCH, PATCH)
    assert batch['mask'].dtype == torch.int64
    assert batch['bounds'].shape == (size, 9)
    assert batch['transform'].shape == (size, 9)
    assert batch['available'].shape == (size, 3)
    assert batch['available'].dtype == torch.bool


def test_training_batches_are_normalised(fitted: MultimodalDataModule) -> None:
    pixels: dict[str, list[Tensor]] = {n: [] for n in fitted.modalities}
    count = 0
    for batch in batches(fitted, 'train'):
        out = fitted.on_after_batch_transfer(batch, 0)
        count += 1
        for name in fitted.modalities:
            image = out[f'image_{name}']
            assert torch.isfinite(image).all()
            pixels[name].append(image.transpose(0, 1).reshape(image.shape[1], -1))
    assert count >= 5
    for name, parts in pixels.items():
        values = torch.cat(parts, dim=1).double()
        mean, std = values.mean(dim=1), values.std(dim=1)
        assert mean.abs().max() < 0.3, (name, mean)
        assert ((std > 0.7) & (std < 1.4)).all(), (name, std)


def test_val_batches_are_exact_file_pixels(fitted: MultimodalDataModule) -> None:
    """Windows lie on the optical grid: optical and labels are copied, not resampled."""
    with rasterio.open(only_file(SCENE / 'optical')) as src:
        optical, optical_transform = src.read().astype(np.float32), src.transform
    with rasterio.open(only_file(SCENE / 'mask')) as src:
        labels, labels_bounds = src.read(1).astype(np.int64), src.bounds
        labels_transform = src.transform
    checked = 0
    dataset = fitted.val_dataset
    assert isinstance(dataset, GeoDataset)
    for box in windows(fitted.val_sampler):
        sample = dataset[box[0] : box[2], box[1] : box[3]]
        window = from_bounds(*box, transform=optical_transform)
        row, col = round(window.row_off), round(window.col_off)
        if row < 0 or row + PATCH > optical.shape[1]:
            continue
        expected = optical[:, row : row + PATCH, col : col + PATCH]
        assert np.array_equal(sample['image_optical'].numpy(), expected)
        # Labels: the file where it covers the window, ignore_index elsewhere
        inside = shapely.box(*labels_bounds).contains(shapely.box(*box))
        if inside:
            window = from_bounds(*box, transform=labels_transform)
            row, col = round(window.row_off), round(window.col_off)
            expected_labels = labels[row : row + PATCH, col : col + PATCH]
            assert np.array_equal(sample['mask'].numpy(), expected_labels)
            checked += 1
    assert checked >= 3


def test_bounds_and_transform_describe_the_window(fitted: MultimodalDataModule) -> None:
    boxes = windows(fitted.val_sampler)
    seen = 0
    for batch in batches(fitted, 'val'):
        for bounds, transform in zip(batch['bounds'], batch['transform'], strict=True):
            xmin, xmax, xres, ymin, ymax, yres = bounds[:6].double().tolist()
            box = boxes[seen]
            seen += 1
            # TorchGeo stores them as float32: 0.5 m steps at UTM northings
            assert (xmin, ymin, xmax, ymax) == pytest.approx(box, abs=0.5)
            assert (xres, yres) == (10, 10)
            expected = from_origin(box[0], box[3], xres, yres)
            assert transform.double().tolist() == pytest.approx(list(expected), abs=0.5)
    assert seen == len(boxes)


def test_augmentation_only_while_training(
    fitted: MultimodalDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = next(iter(fitted.train_dataloader()))
    plain = fitted.on_after_batch_transfer(dict(batch), 0)
    monkeypatch.setattr(fitted, 'trainer', SimpleNamespace(training=False))
    evaluated = fitted.on_after_batch_transfer(dict(batch), 0)
    for key in plain:
        assert torch.equal(plain[key], evaluated[key])
    monkeypatch.setattr(fitted, 'trainer', SimpleNamespace(training=True))
    torch.manual_seed(0)
    augmented = fitted.on_after_batch_transfer(dict(batch), 0)
    assert not torch.equal(augmented['mask'], plain['mask'])
    for key in ('image_optical', 'image_sar', 'image_dsm', 'mask'):
        # Flips and turns only move pixels: same values per sample and band
        before = plain[key].flatten(start_dim=-2).sort(dim=-1).values
        after = augmented[key].flatten(start_dim=-2).sort(dim=-1).values
        assert torch.equal(before, after)
    assert augmented['mask'].dtype == torch.int64


# --- statistics --------------------------------------------------------------


def test_sar_is_in_decibels_by_default(fitted: MultimodalDataModule) -> None:
    given = {n: fitted.statistics[n] for n in ('optical', 'dsm')}
    linear = scene_datamodule(
        layouts={'sar': {'to_db': False}}, statistics=given, statistics_samples=8
    )
    linear.setup('validate')
    # Only SAR was estimated; the given statistics are kept as they are
    assert linear.statistics['optical'] is given['optical']
    assert all(m < 0 for m in fitted.statistics['sar'].mean)
    assert all(0 < m < 1 for m in linear.statistics['sar'].mean)
    assert fitted.dataset is not None
    assert linear.dataset is not None
    db_sar = fitted.dataset.modality_datasets['sar']
    linear_sar = linear.dataset.modality_datasets['sar']
    valid = 0
    for box in windows(linear.val_sampler):
        query = (slice(box[0], box[2]), slice(box[1], box[3]))
        db = db_sar[query]['image_sar']
        lin = linear_sar[query]['image_sar']
        finite = torch.isfinite(lin)
        assert torch.equal(finite, torch.isfinite(db))
        assert (lin[finite] > 0).all()
        torch.testing.assert_close(db[finite], 10 * torch.log10(lin[finite]))
        valid += int(finite.sum())
    assert valid > 1000


def test_given_statistics_are_used_as_given(fitted: MultimodalDataModule) -> None:
    given = {
        'optical': ModalityStatistics([100, 200, 300, 400], [10, 20, 30, 40]),
        'sar': {'mean': [-5, -10], 'std': [2, 4]},
        'dsm': {'mean': [50], 'std': [5]},
    }
    datamodule = scene_datamodule(statistics=given)
    datamodule.setup('validate')
    assert datamodule.statistics['optical'] == given['optical']
    assert datamodule.statistics['sar'] == ModalityStatistics([-5, -10], [2, 4])
    batch = next(iter(datamodule.val_dataloader()))
    raw = {key: value.clone() for key, value in batch.items()}
    out = datamodule.on_after_batch_transfer(batch, 0)
    for i, name in enumerate(('optical', 'sar', 'dsm')):
        stats = datamodule.statistics[name]
        mean = torch.tensor(stats.mean).view(1, -1, 1, 1)
        std = torch.tensor(stats.std).view(1, -1, 1, 1)
        available = raw['available'][:, i].float().view(-1, 1, 1, 1)
        expected = (raw[f'image_{name}'] - mean) / std * available
        torch.testing.assert_close(out[f'image_{name}'], expected)


@pytest.fixture(scope='module')
def east_west(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One optical band: values 100-106 in the west half, 5000+ in the east.

    Labels cover everything; a third raster ('east') only the eastern 24 columns.
    """
    root = tmp_path_factory.mktemp('east_west')
    rows, cols = np.mgrid[0:40, 0:64]
    values = np.where(cols < 32, 100 + (rows + cols) % 7, 5000 + rows)
    transform = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
    east = 1 + rows  # written for the eastern 24 columns only
    for name, data, dtype in (
        ('optical', values, 'uint16'),
        ('mask', (cols >= 32).astype(np.uint8), 'uint8'),
        ('east', east[:, 40:], 'uint16'),
    ):
        (root / name).mkdir()
        with rasterio.open(
            root / name / f'{name}.tif',
            'w',
            driver='GTiff',
            width=data.shape[1],
            height=40,
            count=1,
            dtype=dtype,
            crs='EPSG:32631',
            transform=transform @ transform.translation(64 - data.shape[1], 0),
        ) as dst:
            dst.write(data[None].astype(dtype))
    return root


def test_statistics_come_from_the_train_stripe_only(east_west: Path) -> None:
    datamodule = MultimodalDataModule(
        {'optical': str(east_west / 'optical')},
        str(east_west / 'mask'),
        patch_size=8,
        batch_size=2,
        statistics_samples=12,
        seed=3,
    )
    datamodule.setup('fit')
    train = datamodule.stripes['train']
    assert train.box[2] <= 500_000 + 32 * 10  # the west half
    stats = datamodule.statistics['optical']
    assert 100 <= stats.mean[0] <= 106
    assert 0 < stats.std[0] < 7
    # The same estimate as compute_statistics on the train stripe
    source: GeoDataset = roi_split(
        OpticalRaster(east_west / 'optical'), [train.polygon]
    )[0]
    expected = compute_statistics(
        source, 'optical', num_samples=12, patch_size=8, seed=3
    )
    assert stats.mean == pytest.approx(expected.mean)
    assert stats.std == pytest.approx(expected.std)
    assert datamodule.modalities == {'optical': 1}


def test_optional_modality_missing_from_the_train_stripe(east_west: Path) -> None:
    paths = {'optical': str(east_west / 'optical'), 'east': str(east_west / 'east')}
    datamodule = MultimodalDataModule(
        paths, str(east_west / 'mask'), optional=['east'], patch_size=8
    )
    with pytest.raises(DataError, match=r"'east'.*train area.*statistics="):
        datamodule.setup('fit')
    given = MultimodalDataModule(
        paths,
        str(east_west / 'mask'),
        optional=['east'],
        patch_size=8,
        statistics={'east': {'mean': [20], 'std': [10]}},
    )
    given.setup('fit')
    assert given.modalities == {'optical': 1, 'east': 1}
    batch = next(iter(given.train_dataloader()))
    assert not batch['available'][:, 1].any()  # no 'east' file in the train stripe
    assert given.on_after_batch_transfer(batch, 0)['image_east'].eq(0).all()


# --- predict -----------------------------------------------------------------


def test_predict_covers_the_image_area_without_labels(
    fitted: MultimodalDataModule,
) -> None:
    unlabelled = MultimodalDataModule(
        SCENE_PATHS, batch_size=4, patch_size=PATCH, statistics=fitted.statistics
    )
    unlabelled.setup('predict')
    labelled = scene_datamodule(statistics=fitted.statistics)
    labelled.setup('predict')
    boxes = windows(unlabelled.predict_sampler)
    assert boxes == windows(labelled.predict_sampler)  # labels do not matter

    # Optical and DSM bound the image area (SAR covers more); the grid covers it
    # to within the pixel snapping, and reaches past the labels' northern edge
    optical, dsm = file_bounds(SCENE / 'optical'), file_bounds(SCENE / 'dsm')
    images = shapely.box(*optical) & shapely.box(*dsm)
    covered = shapely.union_all([shapely.box(*box) for box in boxes])
    assert covered.contains(images.buffer(-10))
    assert all((shapely.box(*box) & images).area > 0 for box in boxes)
    labels_top = file_bounds(SCENE / 'mask')[3]
    assert covered.contains(shapely.Point(optical[0] + 100, labels_top + 15))

    seen = 0
    for batch in batches(unlabelled, 'predict'):
        assert 'mask' not in batch
        out = unlabelled.on_after_batch_transfer(batch, 0)
        assert torch.isfinite(out['image_optical']).all()
        for bounds, transform in zip(batch['bounds'], batch['transform'], strict=True):
            box = boxes[seen]
            seen += 1
            assert bounds[[0, 3, 1, 4]].double().tolist() == pytest.approx(box, abs=0.5)
            assert transform[2].item() == pytest.approx(box[0], abs=0.5)
            assert transform[5].item() == pytest.approx(box[3], abs=0.5)
    assert seen == len(boxes)


# --- optional modality ---------------------------------------------------------


@pytest.fixture(scope='module')
def optional_sar() -> MultimodalDataModule:
    datamodule = MultimodalDataModule(
        MULTI_PATHS,
        str(MULTI / 'mask'),
        optional=['sar'],
        batch_size=4,
        patch_size=PATCH,
        statistics_samples=16,
    )
    datamodule.setup('fit')
    return datamodule


def test_windows_outside_sar_have_it_unavailable_and_zero(
    optional_sar: MultimodalDataModule,
) -> None:
    assert optional_sar.dataset is not None
    sar = optional_sar.dataset.modality_datasets['sar'].index.geometry.union_all()
    sar_index = list(optional_sar.modalities).index('sar')
    tested = MultimodalDataModule(
        MULTI_PATHS,
        str(MULTI / 'mask'),
        optional=['sar'],
        batch_size=4,
        patch_size=PATCH,
        statistics=optional_sar.statistics,
    )
    tested.setup('test')
    outside = inside = 0
    for datamodule, split in ((optional_sar, 'val'), (tested, 'test')):
        boxes = iter(windows(getattr(datamodule, f'{split}_sampler')))
        for batch in batches(datamodule, split):
            out = datamodule.on_after_batch_transfer(batch, 0)
            assert batch['available'][:, 0].all()  # optical is required
            for i, flag in enumerate(batch['available'][:, sar_index].tolist()):
                box = shapely.box(*next(boxes))
                if not box.intersects(sar):
                    outside += 1
                    assert not flag
                    assert (out['image_sar'][i] == 0).all()
                elif (box & sar).area > 0.5 * box.area:
                    inside += 1
                    assert flag
                    assert out['image_sar'][i].abs().sum() > 0
                assert torch.isfinite(out['image_sar'][i]).all()
    assert outside >= 4
    assert inside >= 2


def test_optional_sar_batches_from_training(optional_sar: MultimodalDataModule) -> None:
    batch = next(iter(optional_sar.train_dataloader()))
    assert batch['image_sar'].shape[1] == 2
    assert batch['image_dsm'].shape[1] == 1


# --- errors ------------------------------------------------------------------


def test_patch_too_large_for_the_train_stripe() -> None:
    # 93 columns: val and test take 32 each, 29 remain; random 32-pixel patches
    # need more than 32 * sqrt(2)
    datamodule = scene_datamodule(patch_size=32)
    with pytest.raises(DataError, match=r'train area.*patch_size'):
        datamodule.setup('fit')


def test_val_and_test_leave_no_train_stripe() -> None:
    datamodule = scene_datamodule(patch_size=48)
    with pytest.raises(DataError, match=r'train area is empty.*patch_size'):
        datamodule.setup('fit')


def test_mask_needed_to_fit() -> None:
    datamodule = MultimodalDataModule(SCENE_PATHS, patch_size=PATCH)
    with pytest.raises(ConfigurationError, match='mask'):
        datamodule.setup('fit')


def test_no_test_area(fitted: MultimodalDataModule) -> None:
    datamodule = scene_datamodule(test_fraction=0, statistics=fitted.statistics)
    with pytest.raises(DataError, match='test_fraction'):
        datamodule.setup('test')


def test_no_files(tmp_path: Path) -> None:
    empty = tmp_path / 'nothing_here'
    empty.mkdir()
    datamodule = MultimodalDataModule(
        {**SCENE_PATHS, 'dsm': str(empty)}, str(SCENE / 'mask'), patch_size=PATCH
    )
    with pytest.raises(DataError, match='nothing_here'):
        datamodule.setup('fit')


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'val_fraction': 0.5, 'test_fraction': 0.5}, 'val_fraction \\+ test_fraction'),
        ({'val_fraction': 1.2}, 'val_fraction'),
        ({'optional': ['lidar']}, 'lidar'),
        ({'split_axis': 'z'}, 'split_axis'),
        ({'patch_size': 4}, 'patch_size'),
        ({'statistics': {'lidar': {'mean': [0], 'std': [1]}}}, 'lidar'),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        MultimodalDataModule(SCENE_PATHS, str(SCENE / 'mask'), **kwargs)


def test_no_reprojection_chatter(capsys: pytest.CaptureFixture[str]) -> None:
    datamodule = MultimodalDataModule(
        SCENE_PATHS,
        batch_size=2,
        patch_size=PATCH,
        statistics={
            'optical': {'mean': [0] * 4, 'std': [1] * 4},
            'sar': {'mean': [0, 0], 'std': [1, 1]},
            'dsm': {'mean': [0], 'std': [1]},
        },
    )
    datamodule.setup('predict')
    assert 'Converting' not in capsys.readouterr().out


def test_modalities_before_setup() -> None:
    with pytest.raises(RuntimeError, match='setup'):
        _ = MultimodalDataModule(SCENE_PATHS).modalities
