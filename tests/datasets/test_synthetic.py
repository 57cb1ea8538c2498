"""Tests of the synthetic multimodal scene generator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from numpy.typing import NDArray
from rasterio.warp import transform, transform_bounds

from torchgeo_stars.datasets.synthetic import (
    SYNTHETIC_CLASS_COLORS,
    SYNTHETIC_CLASSES,
    SyntheticScene,
    describe_scene,
    make_synthetic_scene,
    synthetic_class_names,
)
from torchgeo_stars.datasets.synthetic import scene as synthetic

SHADOW = 100  # code the tests give to shadowed ground pixels

# Canonical class indices of an 8-class scene.
IMP, BLD, LOW, TREE, WATER, VEH, SOIL, CROP = range(8)


def read(path: Path) -> NDArray[Any]:
    with rasterio.open(path) as src:
        data: NDArray[Any] = src.read()
    return data


def footprint_codes(
    path: Path, scene: SyntheticScene, ground_codes: NDArray[Any], n: int
) -> NDArray[Any]:
    """Ground code under n x n points of every pixel of a raster.

    The points are mapped into the reference grid with rasterio's own CRS
    transform, independently of the generator's sampling code.
    """
    layout, _ = synthetic._generate(
        scene.size, scene.seed, scene.num_classes, scene.crs['sar']
    )
    ref = layout.ref
    with rasterio.open(path) as src:
        offsets = (np.arange(n) + 0.5) / n
        rows = np.arange(src.height)[:, None, None, None] + offsets[None, None, :, None]
        cols = np.arange(src.width)[None, :, None, None] + offsets[None, None, None, :]
        rows, cols = np.broadcast_arrays(rows, cols)
        t = src.transform
        x = t.c + t.a * cols + t.b * rows
        y = t.f + t.d * cols + t.e * rows
        xs, ys = transform(src.crs, ref.crs, x.ravel(), y.ravel())
    r = ref.transform
    ref_cols = np.floor((np.asarray(xs) - r.c) / r.a).astype(int)
    ref_rows = np.floor((np.asarray(ys) - r.f) / r.e).astype(int)
    assert ref_cols.min() >= 0
    assert ref_cols.max() < ref.width
    assert ref_rows.min() >= 0
    assert ref_rows.max() < ref.height
    codes: NDArray[Any] = ground_codes[ref_rows, ref_cols]
    return codes.reshape(rows.shape[0], rows.shape[1], n * n)


def standardised_gap(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Difference of means in units of the pooled standard deviation."""
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return float(abs(a.mean() - b.mean()) / pooled)


@pytest.fixture(scope='module')
def scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    return make_synthetic_scene(tmp_path_factory.mktemp('scene'), size=96, seed=0)


@pytest.fixture(scope='module')
def rich_scene(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    """An 8-class scene large enough for distribution comparisons."""
    root = tmp_path_factory.mktemp('rich')
    return make_synthetic_scene(root, size=192, seed=3, num_classes=8)


@pytest.fixture(scope='module')
def rich_codes(rich_scene: SyntheticScene) -> NDArray[Any]:
    """Ground truth of ``rich_scene``: canonical class, SHADOW where shadowed."""
    _, ground = synthetic._generate(
        rich_scene.size, rich_scene.seed, rich_scene.num_classes, rich_scene.crs['sar']
    )
    codes = ground.classes.astype(np.int64)
    codes[ground.shadow] = SHADOW
    return codes


def test_class_constants() -> None:
    assert len(SYNTHETIC_CLASSES) == 8
    assert set(SYNTHETIC_CLASS_COLORS) == set(SYNTHETIC_CLASSES)
    assert len(set(SYNTHETIC_CLASS_COLORS.values())) == 8
    assert synthetic_class_names(8) == SYNTHETIC_CLASSES
    assert synthetic_class_names(4) == (
        'impervious',
        'building',
        'low_vegetation',
        'vehicle',
    )
    for k in range(4, 9):
        names = synthetic_class_names(k)
        assert len(names) == k
        assert 'vehicle' in names
        assert 'building' in names
        assert list(names) == [c for c in SYNTHETIC_CLASSES if c in names]


def test_files_and_metadata(scene: SyntheticScene) -> None:
    assert scene.modalities == ('optical', 'sar', 'dsm')
    assert scene.class_names == synthetic_class_names(6)
    assert re.search(r'20\d{6}', scene.images['optical'].name)
    for name in ('sar', 'dsm'):
        assert not re.search(r'\d{8}', scene.images[name].name)

    expected = {
        'optical': ('EPSG:32632', (10.0, 10.0), 'uint16', 4, 0),
        'sar': ('EPSG:32631', (20.0, 20.0), 'float32', 2, 0),
        'dsm': ('EPSG:32632', (5.0, 5.0), 'float32', 1, -9999),
        'mask': ('EPSG:32632', (10.0, 10.0), 'uint8', 1, 255),
    }
    files = {**scene.images, 'mask': scene.mask}
    for name, (crs, res, dtype, count, nodata) in expected.items():
        with rasterio.open(files[name]) as src:
            assert src.crs.to_string() == crs, name
            assert src.res == pytest.approx(res), name
            assert src.dtypes == (dtype,) * count, name
            assert src.nodata == nodata, name
            assert src.profile['tiled'], name
            assert src.compression is not None, name
            assert scene.crs[name] == crs
            assert scene.resolution[name] == pytest.approx(res)

    optical = read(scene.images['optical'])
    nodata = (optical == 0).all(axis=0)
    assert 0 < nodata.mean() < 0.05  # a corner outside the swath
    assert ((optical > 0) == ~nodata).all()  # 0 only as nodata
    assert optical.max() <= 10000
    with rasterio.open(scene.images['optical']) as src:
        assert src.descriptions == ('blue', 'green', 'red', 'nir')

    sar = read(scene.images['sar'])
    assert np.isfinite(sar).all()
    assert (sar > 0).all()
    # Gamma speckle: VV/VH ratio of single pixels varies a lot.
    assert np.std(np.log(sar[0])) > 0.4

    dsm = read(scene.images['dsm'])[0]
    voids = dsm == -9999
    assert 0 < voids.mean() < 0.05
    assert dsm[~voids].min() > 100
    assert dsm[~voids].max() < 400

    with rasterio.open(scene.mask) as src:
        labels = src.read(1)
        tags = src.tags()
        colormap = src.colormap(1)
    assert labels.max() < scene.num_classes
    assert tags['CLASS_NAMES'].split(',') == list(scene.class_names)
    for index, name in enumerate(scene.class_names):
        assert tags[f'CLASS_{index}'] == name
        assert colormap[index][:3] == SYNTHETIC_CLASS_COLORS[name]


def test_extents_differ_but_overlap(scene: SyntheticScene) -> None:
    boxes = {}
    for name, path in {**scene.images, 'mask': scene.mask}.items():
        with rasterio.open(path) as src:
            boxes[name] = transform_bounds(src.crs, scene.reference_crs, *src.bounds)
    assert len(set(boxes.values())) == 4
    optical = boxes['optical']
    left = max(b[0] for b in boxes.values())
    bottom = max(b[1] for b in boxes.values())
    right = min(b[2] for b in boxes.values())
    top = min(b[3] for b in boxes.values())
    overlap = (right - left) * (top - bottom)
    area = (optical[2] - optical[0]) * (optical[3] - optical[1])
    assert 0.8 < overlap / area < 1.0
    common = scene.common_bounds
    for name, box in boxes.items():
        assert box[0] <= common[0] < common[2] <= box[2], name
        assert box[1] <= common[1] < common[3] <= box[3], name
    ref = scene.reference_bounds
    for box in boxes.values():
        assert ref[0] <= box[0]
        assert box[2] <= ref[2]
        assert ref[1] <= box[1]
        assert box[3] <= ref[3]


def test_deterministic_and_seed_sensitive(
    tmp_path: Path, scene: SyntheticScene
) -> None:
    again = make_synthetic_scene(tmp_path / 'again', size=96, seed=0)
    other = make_synthetic_scene(tmp_path / 'other', size=96, seed=1)
    for name in ('optical', 'sar', 'dsm'):
        a, b = read(scene.images[name]), read(again.images[name])
        assert a.dtype == b.dtype, name
        assert a.tobytes() == b.tobytes(), name
        assert not np.array_equal(a, read(other.images[name])), name
    a, b, c = read(scene.mask), read(again.mask), read(other.mask)
    assert a.tobytes() == b.tobytes()
    assert (a != c).mean() > 0.2


@pytest.mark.parametrize('num_classes', [4, 5, 6, 7, 8])
def test_classes_imbalanced(tmp_path: Path, num_classes: int) -> None:
    scene = make_synthetic_scene(tmp_path, size=96, seed=2, num_classes=num_classes)
    assert scene.class_names == synthetic_class_names(num_classes)
    labels = read(scene.mask)
    counts = np.bincount(labels.ravel(), minlength=256)
    assert counts[:num_classes].sum() == labels.size  # no other value than the classes
    fractions = counts[:num_classes] / labels.size
    assert (fractions > 0).all(), fractions
    vehicle = fractions[scene.class_names.index('vehicle')]
    assert 0 < vehicle < 0.02
    assert fractions.max() > 10 * vehicle


def test_same_geometry_for_every_class_count(tmp_path: Path) -> None:
    _, few = synthetic._generate(96, 0, 4, 'EPSG:32631')
    _, many = synthetic._generate(96, 0, 8, 'EPSG:32631')
    # Canonical codes: dropped classes become low vegetation, the rest stays.
    merged = np.isin(many.classes, [TREE, WATER, SOIL, CROP])
    assert merged.mean() > 0.3
    assert (few.classes[merged] == LOW).all()
    assert np.array_equal(few.classes[~merged], many.classes[~merged])
    # In the label rasters only pixels on class edges may change.
    a = read(make_synthetic_scene(tmp_path / 'a', size=96, num_classes=4).mask)[0]
    b = read(make_synthetic_scene(tmp_path / 'b', size=96, num_classes=8).mask)[0]
    assert ((a == 1) != (b == 1)).mean() < 0.01


def isolated_share(labels: NDArray[Any], code: int) -> float:
    """Share of a class's pixels with no 4-neighbour of the same class."""
    hit = labels == code
    neighbour = np.zeros_like(hit)
    neighbour[1:] |= hit[:-1]
    neighbour[:-1] |= hit[1:]
    neighbour[:, 1:] |= hit[:, :-1]
    neighbour[:, :-1] |= hit[:, 1:]
    return float((hit & ~neighbour).sum() / hit.sum())


def test_vehicle_scale_makes_the_rare_class_resolvable(tmp_path: Path) -> None:
    _, cars = synthetic._generate(192, 0, 6, 'EPSG:32631')
    _, blocks = synthetic._generate(192, 0, 6, 'EPSG:32631', vehicle_scale=3.0)
    # Vehicles are painted onto paving only: everything else is the same scene.
    paving = np.isin(cars.classes, [IMP, VEH]) | np.isin(blocks.classes, [IMP, VEH])
    assert paving.mean() < 0.5
    assert np.array_equal(cars.classes[~paving], blocks.classes[~paving])
    assert np.array_equal(cars.terrain, blocks.terrain)

    small = make_synthetic_scene(tmp_path / 'cars', size=192, seed=0)
    large = make_synthetic_scene(
        tmp_path / 'blocks', size=192, seed=0, vehicle_scale=3.0
    )
    veh = small.class_names.index('vehicle')
    a, b = read(small.mask)[0], read(large.mask)[0]
    # Cars are one or two 10 m pixels, many alone; the blocks are several
    # pixels across (no vehicle pixel without a vehicle neighbour).
    assert isolated_share(a, veh) > 0.25
    assert isolated_share(b, veh) < 0.02
    # Fewer but larger: the class grows, yet stays the rarest.
    fractions = np.bincount(b[b != 255], minlength=6) / (b != 255).sum()
    assert 1.5 * (a == veh).mean() < fractions[veh] < 0.03
    assert fractions.argmin() == veh
    with rasterio.open(large.mask) as src:
        assert src.tags()['SYNTHETIC_VEHICLE_SCALE'] == '3.0'


def test_building_vs_impervious_only_by_height(
    rich_scene: SyntheticScene, rich_codes: NDArray[Any]
) -> None:
    optical = read(rich_scene.images['optical']).astype(np.float64)
    codes = footprint_codes(rich_scene.images['optical'], rich_scene, rich_codes, 2)
    valid = (optical > 0).all(axis=0)
    building = (codes == BLD).all(-1) & valid
    paved = (codes == IMP).all(-1) & valid
    assert building.sum() > 300
    assert paved.sum() > 300
    for band in optical:
        assert standardised_gap(band[building], band[paved]) < 0.25

    sar = 10 * np.log10(read(rich_scene.images['sar']))
    codes = footprint_codes(rich_scene.images['sar'], rich_scene, rich_codes, 4)
    # SAR pixels made of buildings and paved ground only, mostly one or the other.
    hard = np.isin(codes, [BLD, IMP]).all(-1)
    share = (codes == BLD).mean(-1)
    mostly_building, mostly_paved = hard & (share >= 0.5), hard & (share < 0.5)
    assert mostly_building.sum() > 30
    assert mostly_paved.sum() > 30
    for band in sar:
        assert standardised_gap(band[mostly_building], band[mostly_paved]) < 0.35

    dsm = read(rich_scene.images['dsm'])[0]
    codes = footprint_codes(rich_scene.images['dsm'], rich_scene, rich_codes, 1)[..., 0]
    valid = dsm != -9999
    heights = dsm[(codes == BLD) & valid], dsm[(codes == IMP) & valid]
    assert np.median(heights[0]) - np.median(heights[1]) > 5.0
    assert standardised_gap(*heights) > 3.0


def test_tree_vs_low_vegetation_only_by_height(
    rich_scene: SyntheticScene, rich_codes: NDArray[Any]
) -> None:
    optical = read(rich_scene.images['optical']).astype(np.float64)
    codes = footprint_codes(rich_scene.images['optical'], rich_scene, rich_codes, 2)
    valid = (optical > 0).all(axis=0)
    tree, low = (codes == TREE).all(-1) & valid, (codes == LOW).all(-1) & valid
    assert tree.sum() > 300
    assert low.sum() > 300
    for band in optical:
        assert standardised_gap(band[tree], band[low]) < 0.25

    sar = 10 * np.log10(read(rich_scene.images['sar']))
    codes = footprint_codes(rich_scene.images['sar'], rich_scene, rich_codes, 4)
    tree, low = (codes == TREE).all(-1), (codes == LOW).all(-1)
    for band in sar:
        assert standardised_gap(band[tree], band[low]) < 0.35

    dsm = read(rich_scene.images['dsm'])[0]
    codes = footprint_codes(rich_scene.images['dsm'], rich_scene, rich_codes, 1)[..., 0]
    valid = dsm != -9999
    assert (
        np.median(dsm[(codes == TREE) & valid]) - np.median(dsm[(codes == LOW) & valid])
        > 5.0
    )


def test_water_vs_shadow_only_by_sar(
    rich_scene: SyntheticScene, rich_codes: NDArray[Any]
) -> None:
    optical = read(rich_scene.images['optical']).astype(np.float64)
    codes = footprint_codes(rich_scene.images['optical'], rich_scene, rich_codes, 2)
    valid = (optical > 0).all(axis=0)
    water, shadow = (codes == WATER).all(-1) & valid, (codes == SHADOW).all(-1) & valid
    assert water.sum() > 300
    assert shadow.sum() > 300
    for band in optical:
        assert standardised_gap(band[water], band[shadow]) < 0.25

    dsm = read(rich_scene.images['dsm'])[0]
    codes = footprint_codes(rich_scene.images['dsm'], rich_scene, rich_codes, 1)[..., 0]
    valid = dsm != -9999
    water_h, shadow_h = dsm[(codes == WATER) & valid], dsm[(codes == SHADOW) & valid]
    assert abs(np.median(water_h) - np.median(shadow_h)) < 1.0

    sar = 10 * np.log10(read(rich_scene.images['sar']))
    codes = footprint_codes(rich_scene.images['sar'], rich_scene, rich_codes, 4)
    water = (codes == WATER).all(-1)
    shadow = (codes == SHADOW).any(-1) & ~(codes == WATER).any(-1)
    for band in sar:
        assert standardised_gap(band[water], band[shadow]) > 2.0
        assert band[water].mean() < band[shadow].mean()


def test_cropland_by_sar_and_bare_soil_by_optics(
    rich_scene: SyntheticScene, rich_codes: NDArray[Any]
) -> None:
    optical = read(rich_scene.images['optical']).astype(np.float64)
    codes = footprint_codes(rich_scene.images['optical'], rich_scene, rich_codes, 2)
    valid = (optical > 0).all(axis=0)
    crop, low = (codes == CROP).all(-1) & valid, (codes == LOW).all(-1) & valid
    soil, paved = (codes == SOIL).all(-1) & valid, (codes == IMP).all(-1) & valid
    for band in optical:
        assert standardised_gap(band[crop], band[low]) < 0.25
    assert max(standardised_gap(b[soil], b[paved]) for b in optical) > 2.0

    sar = 10 * np.log10(read(rich_scene.images['sar']))
    codes = footprint_codes(rich_scene.images['sar'], rich_scene, rich_codes, 4)
    crop, low = (codes == CROP).all(-1), (codes == LOW).all(-1)
    soil, paved = (codes == SOIL).all(-1), (codes == IMP).all(-1)
    assert standardised_gap(sar[0][crop], sar[0][low]) > 1.0
    for band in sar:
        assert standardised_gap(band[soil], band[paved]) < 0.35


@pytest.mark.parametrize('sar_crs', ['EPSG:32631', 'EPSG:3857'])
def test_rasters_agree_geographically(tmp_path: Path, sar_crs: str) -> None:
    """Label pixels map, through the CRS transform, onto matching DSM / SAR values."""
    scene = make_synthetic_scene(tmp_path, size=128, seed=5, sar_crs=sar_crs)
    names = scene.class_names
    with rasterio.open(scene.mask) as src:
        labels = src.read(1)
        # Interior pixels: the 3 x 3 neighbourhood has one class.
        pad = np.pad(labels, 1, mode='edge')
        same = np.ones(labels.shape, dtype=bool)
        for dy in range(3):
            for dx in range(3):
                same &= (
                    pad[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] == labels
                )
        rows, cols = np.nonzero(same)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
        crs = src.crs
    xs, ys = np.asarray(xs), np.asarray(ys)
    values = {}
    for name in ('sar', 'dsm'):
        with rasterio.open(scene.images[name]) as src:
            tx, ty = transform(crs, src.crs, xs, ys)
            r, c = rasterio.transform.rowcol(src.transform, tx, ty)
            r, c = np.asarray(r), np.asarray(c)
            inside = (r >= 0) & (r < src.height) & (c >= 0) & (c < src.width)
            band = src.read(1)
            values[name] = np.where(
                inside,
                band[r.clip(0, src.height - 1), c.clip(0, src.width - 1)],
                np.nan,
            )
    interior = labels[rows, cols]
    dsm = np.where(values['dsm'] == -9999, np.nan, values['dsm'])
    building = np.nanmedian(dsm[interior == names.index('building')])
    paved = np.nanmedian(dsm[interior == names.index('impervious')])
    assert building - paved > 5.0
    sar = values['sar']
    water = np.nanmedian(sar[interior == names.index('water')])
    grass = np.nanmedian(sar[interior == names.index('low_vegetation')])
    assert water < 0.3 * grass


def test_overwrite(tmp_path: Path) -> None:
    first = make_synthetic_scene(tmp_path, size=64, seed=0)
    with pytest.raises(FileExistsError, match=re.escape(str(first.images['optical']))):
        make_synthetic_scene(tmp_path, size=64, seed=1)
    assert (
        read(first.mask).tobytes()
        == read(make_synthetic_scene(tmp_path / 'x', size=64, seed=0).mask).tobytes()
    )
    second = make_synthetic_scene(tmp_path, size=64, seed=1, overwrite=True)
    assert (
        read(second.mask).tobytes()
        != read(tmp_path / 'x' / 'mask' / second.mask.name).tobytes()
    )
    assert not list(tmp_path.rglob('*.partial'))


def test_failure_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_write = synthetic._write

    def failing_write(path: Path, *args: Any, **kwargs: Any) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError('disk full')
        real_write(path, *args, **kwargs)

    monkeypatch.setattr(synthetic, '_write', failing_write)
    with pytest.raises(OSError, match='disk full'):
        make_synthetic_scene(tmp_path, size=64)
    assert len(calls) == 3
    assert not [p for p in tmp_path.rglob('*') if p.is_file()]


@pytest.mark.parametrize('num_classes', [3, 9, 0, True])
def test_invalid_num_classes(tmp_path: Path, num_classes: int) -> None:
    with pytest.raises(ValueError, match='num_classes'):
        make_synthetic_scene(tmp_path, size=64, num_classes=num_classes)
    with pytest.raises(ValueError, match='num_classes'):
        synthetic_class_names(num_classes)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ('kwargs', 'match'),
    [
        ({'size': 8}, 'size'),
        ({'size': 64.0}, 'size'),
        ({'seed': -1}, 'seed'),
        ({'sar_crs': 'EPSG:999999'}, 'sar_crs'),
        ({'vehicle_scale': 0.0}, 'vehicle_scale'),
        ({'vehicle_scale': 5}, 'vehicle_scale'),
        ({'vehicle_scale': True}, 'vehicle_scale'),
        ({'vehicle_scale': '2'}, 'vehicle_scale'),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_synthetic_scene(tmp_path, **{'size': 64, **kwargs})


def test_describe_scene(scene: SyntheticScene) -> None:
    text = describe_scene(scene)
    for token in (
        'EPSG:32632',
        'EPSG:32631',
        '10 x 10',
        '20 x 20',
        '5 x 5',
        *scene.class_names,
    ):
        assert token in text
    labels = read(scene.mask)
    fraction = 100 * (labels == 1).mean()
    assert f'{fraction:6.2f} %' in text  # building fraction, as printed
