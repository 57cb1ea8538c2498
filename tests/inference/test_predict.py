import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from torchgeo_stars.inference import (
    NODATA,
    PROBABILITY_SCALE,
    predict_geotiff,
    probabilities_path,
)

from .helpers import (
    ORIGIN,
    ContextModel,
    PixelModel,
    pixel_probabilities,
    read,
    write_raster,
)

OPTICAL = {'optical': 3}
NAMES = ['water', 'field', 'forest', 'urban']
Optical = tuple[Path, np.typing.NDArray[np.float32]]


def _predict(
    model: torch.nn.Module, inputs: dict[str, Any], output: Path, **kwargs: Any
) -> Path:
    options: dict[str, Any] = {
        'modalities': OPTICAL,
        'class_names': NAMES,
        'patch_size': 32,
        'overlap': 8,
        'batch_size': 3,
        'device': 'cpu',
        'progress': False,
    }
    options.update(kwargs)
    return predict_geotiff(model, inputs, output, **options)


def test_many_tiles_equal_one_tile_and_the_model(
    optical: Optical, tmp_path: Path
) -> None:
    path, data = optical
    model = PixelModel(OPTICAL, 4)
    one = _predict(
        model,
        {'optical': path},
        tmp_path / 'one.tif',
        patch_size=128,
        overlap=0,
        probabilities='float32',
    )
    many = _predict(
        model,
        {'optical': path},
        tmp_path / 'many.tif',
        patch_size=16,
        overlap=6,
        probabilities='float32',
    )
    p_one = read(probabilities_path(one))
    p_many = read(probabilities_path(many))
    expected = pixel_probabilities(model, {'optical': data})
    assert np.abs(p_many - p_one).max() < 1e-4
    assert np.abs(p_many - expected).max() < 1e-4
    np.testing.assert_array_equal(read(many, 1), expected.argmax(0))
    np.testing.assert_array_equal(read(one, 1), read(many, 1))


def test_constant_input_has_no_seam(tmp_path: Path) -> None:
    path = write_raster(tmp_path / 'flat.tif', np.full((3, 64, 96), 0.7, np.float32))
    pixel = _predict(
        PixelModel(OPTICAL, 4),
        {'optical': path},
        tmp_path / 'pixel.tif',
        patch_size=16,
        overlap=4,
        probabilities='float32',
    )
    p = read(probabilities_path(pixel))
    assert (p.max(axis=(1, 2)) - p.min(axis=(1, 2))).max() < 1e-6

    # A model that sees zero padding predicts differently near window borders;
    # blending must smooth those jumps away compared with hard tiles.
    context = ContextModel(OPTICAL, 4)
    hard = _predict(
        context,
        {'optical': path},
        tmp_path / 'hard.tif',
        patch_size=16,
        overlap=0,
        probabilities='float32',
    )
    blended = _predict(
        context,
        {'optical': path},
        tmp_path / 'blended.tif',
        patch_size=16,
        overlap=8,
        probabilities='float32',
    )

    def largest_step(probabilities: np.typing.NDArray[Any]) -> float:
        inner = probabilities[:, 2:-2, 2:-2]
        return float(
            max(
                np.abs(np.diff(inner, axis=1)).max(),
                np.abs(np.diff(inner, axis=2)).max(),
            )
        )

    hard_step = largest_step(read(probabilities_path(hard)))
    blended_step = largest_step(read(probabilities_path(blended)))
    assert hard_step > 0.05  # the stand-in does show border effects
    assert blended_step < 0.25 * hard_step


def test_output_is_a_cog_class_map_with_names_colours_and_grid(
    optical: Optical, tmp_path: Path
) -> None:
    path, _ = optical
    colours = [(0, 0, 255), (255, 255, 0), (0, 128, 0), (128, 128, 128)]
    out = _predict(
        PixelModel(OPTICAL, 4), {'optical': path}, tmp_path / 'map.tif', colors=colours
    )
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(out) as src, rasterio.open(path) as ref:
        assert src.count == 1
        assert src.dtypes[0] == 'uint8'
        assert src.nodata == NODATA
        assert src.block_shapes[0] == (512, 512) or src.block_shapes[0] == src.shape
        assert src.compression is not None
        assert src.crs == ref.crs
        assert (src.width, src.height) == (ref.width, ref.height)
        assert src.transform.almost_equals(ref.transform, precision=0.01 * ref.res[0])
        assert json.loads(src.tags()['STARS_CLASS_NAMES']) == NAMES
        assert src.tags()['STARS_CLASS_2'] == 'forest'
        colormap = src.colormap(1)
        assert [colormap[i][:3] for i in range(4)] == colours
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_uint8_probabilities_match_float32(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    model = PixelModel(OPTICAL, 4)
    f32 = _predict(
        model, {'optical': path}, tmp_path / 'f.tif', probabilities='float32'
    )
    u8 = _predict(model, {'optical': path}, tmp_path / 'u.tif', probabilities='uint8')
    with rasterio.open(probabilities_path(u8)) as src:
        assert src.dtypes[0] == 'uint8'
        assert src.scales[0] == pytest.approx(1 / PROBABILITY_SCALE)
        scaled = src.read().astype(np.float64) * src.scales[0]
        assert cog_validate(str(probabilities_path(u8)))[0]
    exact = read(probabilities_path(f32))
    assert np.abs(scaled - exact).max() <= 0.5 / PROBABILITY_SCALE + 1e-6


def test_folder_mosaic_equals_single_file(optical: Optical, tmp_path: Path) -> None:
    path, data = optical
    folder = tmp_path / 'tiles'
    folder.mkdir()
    for i, (r0, r1) in enumerate([(0, 30), (30, 70)]):
        for j, (c0, c1) in enumerate([(0, 50), (50, 90)]):
            transform = from_origin(ORIGIN[0] + 10 * c0, ORIGIN[1] - 10 * r0, 10, 10)
            write_raster(folder / f'part_{i}{j}.tif', data[:, r0:r1, c0:c1], transform)
    model = PixelModel(OPTICAL, 4)
    whole = _predict(model, {'optical': path}, tmp_path / 'whole.tif')
    mosaic = _predict(model, {'optical': folder}, tmp_path / 'mosaic.tif')
    np.testing.assert_array_equal(read(mosaic), read(whole))
    with rasterio.open(mosaic) as a, rasterio.open(whole) as b:
        assert a.transform == b.transform
        assert a.shape == b.shape


def test_union_of_files_with_a_gap_is_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    left = write_raster(
        tmp_path / 'a.tif', rng.normal(size=(3, 40, 30)).astype(np.float32)
    )
    right_origin = from_origin(ORIGIN[0] + 10 * 50, ORIGIN[1] - 10 * 5, 10, 10)
    right = write_raster(
        tmp_path / 'b.tif',
        rng.normal(size=(3, 40, 30)).astype(np.float32),
        right_origin,
    )
    out = _predict(
        PixelModel(OPTICAL, 4), {'optical': [left, right]}, tmp_path / 'o.tif'
    )
    classes = read(out, 1)
    with rasterio.open(out) as src:
        assert src.shape == (45, 80)
        assert src.transform == from_origin(*ORIGIN, 10, 10)
    assert (classes[:40, :30] != NODATA).all()
    assert (classes[:, 30:50] == NODATA).all()
    assert (classes[40:, :30] == NODATA).all()
    assert (classes[:5, 50:] == NODATA).all()
    assert (classes[5:, 50:] != NODATA).all()


def test_nodata_pixels_of_the_input_are_nodata_in_the_output(tmp_path: Path) -> None:
    data = np.random.default_rng(2).normal(size=(3, 40, 40)).astype(np.float32)
    data[:, 10:20, 5:15] = -9999
    path = write_raster(tmp_path / 'n.tif', data, nodata=-9999)
    classes = read(
        _predict(PixelModel(OPTICAL, 4), {'optical': path}, tmp_path / 'o.tif'), 1
    )
    assert (classes[10:20, 5:15] == NODATA).all()
    assert (classes != NODATA).sum() == 40 * 40 - 100


def test_other_crs_and_resolution_are_reprojected_onto_the_reference(
    tmp_path: Path,
) -> None:
    # Optical (reference) in UTM at 10 m; SAR in WGS84 whose value steps from
    # 1 to 10 at a known easting. A model that only looks at SAR must place the
    # class boundary there on the optical grid.
    modalities = {'optical': 1, 'sar': 1}
    optical = write_raster(tmp_path / 'opt.tif', np.zeros((1, 60, 80), np.float32))
    step_easting = ORIGIN[0] + 10 * 37
    from rasterio.warp import transform as transform_points

    lons, lats = transform_points(
        'EPSG:32631',
        'EPSG:4326',
        [ORIGIN[0] - 200, ORIGIN[0] + 1000, step_easting],
        [ORIGIN[1] + 200, ORIGIN[1] - 800, ORIGIN[1] - 300],
    )
    west, east, north, south = lons[0], lons[1], lats[0], lats[1]
    size = 400
    xres, yres = (east - west) / size, (north - south) / size
    geographic = from_origin(west, north, xres, yres)
    sar = np.ones((1, size, size), np.float32)
    # Step along a meridian close to the easting (UTM grid convergence is tiny here).
    sar[:, :, round((lons[2] - west) / xres) :] = 10.0
    sar_path = write_raster(tmp_path / 'sar.tif', sar, geographic, crs='EPSG:4326')
    model = PixelModel(modalities, 2)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[0, 1] = -1.0
        model.conv.weight[1, 1] = 1.0
        assert model.conv.bias is not None
        model.conv.bias.copy_(torch.tensor([5.5, -5.5]))
    out = _predict(
        model,
        {'optical': optical, 'sar': sar_path},
        tmp_path / 'o.tif',
        modalities=modalities,
        class_names=['low', 'high'],
    )
    classes = read(out, 1)
    with rasterio.open(out) as src, rasterio.open(optical) as ref:
        assert src.crs == ref.crs
        assert src.shape == ref.shape
        assert src.transform.almost_equals(ref.transform, precision=0.01 * 10)
    columns = np.arange(80)
    expected = np.where(ORIGIN[0] + 10 * (columns + 0.5) >= step_easting, 1, 0)
    far = np.abs(ORIGIN[0] + 10 * (columns + 0.5) - step_easting) > 25
    assert (classes[:, far] == expected[far]).all()


def test_finer_input_is_resampled_onto_the_reference_grid(tmp_path: Path) -> None:
    modalities = {'optical': 1, 'sar': 1}
    optical = write_raster(tmp_path / 'opt.tif', np.zeros((1, 30, 40), np.float32))
    sar = np.ones((1, 60, 80), np.float32)
    sar[:, :, 50:] = 10.0  # step at 5 m x 50 = 250 m = optical column 25
    sar_path = write_raster(tmp_path / 'sar.tif', sar, from_origin(*ORIGIN, 5, 5))
    model = PixelModel(modalities, 2)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[0, 1] = -1.0
        model.conv.weight[1, 1] = 1.0
        assert model.conv.bias is not None
        model.conv.bias.copy_(torch.tensor([5.5, -5.5]))
    out = _predict(
        model,
        {'optical': optical, 'sar': sar_path},
        tmp_path / 'o.tif',
        modalities=modalities,
        class_names=['low', 'high'],
    )
    classes = read(out, 1)
    assert (classes[:, :24] == 0).all()
    assert (classes[:, 26:] == 1).all()


def test_user_crs_res_and_bounds_define_the_grid(
    optical: Optical, tmp_path: Path
) -> None:
    path, _ = optical
    bounds = (ORIGIN[0] + 103.0, ORIGIN[1] - 607.0, ORIGIN[0] + 803.0, ORIGIN[1] - 7.0)
    out = _predict(
        PixelModel(OPTICAL, 4),
        {'optical': path},
        tmp_path / 'o.tif',
        res=20.0,
        bounds=bounds,
    )
    with rasterio.open(out) as src:
        assert src.transform.almost_equals(
            from_origin(bounds[0], bounds[3], 20, 20), precision=0.01 * 20
        )
        assert src.shape == (30, 35)
    out = _predict(
        PixelModel(OPTICAL, 4), {'optical': path}, tmp_path / 'w.tif', crs='EPSG:4326'
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 4326
        assert (read(out, 1) != NODATA).mean() > 0.9


def test_reference_bounds_are_snapped_to_the_reference_pixels(
    optical: Optical, tmp_path: Path
) -> None:
    path, _ = optical
    bounds = (ORIGIN[0] + 103.0, ORIGIN[1] - 607.0, ORIGIN[0] + 803.0, ORIGIN[1] - 7.0)
    out = _predict(
        PixelModel(OPTICAL, 4), {'optical': path}, tmp_path / 'o.tif', bounds=bounds
    )
    with rasterio.open(out) as src:
        assert src.transform.almost_equals(
            from_origin(ORIGIN[0] + 100, ORIGIN[1], 10, 10), precision=0.01 * 10
        )
        assert src.shape == (61, 71)


def test_any_subset_of_modalities_is_used_with_its_availability(tmp_path: Path) -> None:
    modalities = {'optical': 2, 'sar': 1, 'dsm': 1}
    rng = np.random.default_rng(4)
    files = {
        'optical': write_raster(
            tmp_path / 'o.tif', rng.normal(size=(2, 40, 40)).astype(np.float32)
        ),
        'sar': write_raster(
            tmp_path / 's.tif', rng.uniform(1, 2, (1, 40, 40)).astype(np.float32)
        ),
        'dsm': write_raster(
            tmp_path / 'd.tif', rng.uniform(0, 50, (1, 40, 40)).astype(np.float32)
        ),
    }
    for subset in [('sar',), ('optical', 'dsm'), ('optical', 'sar', 'dsm')]:
        model = PixelModel(modalities, 3)
        out = _predict(
            model,
            {m: files[m] for m in subset},
            tmp_path / f'{"_".join(subset)}.tif',
            modalities=modalities,
            class_names=['a', 'b', 'c'],
        )
        flags = torch.cat(model.calls)
        expected = torch.tensor([m in subset for m in modalities])
        assert (flags == expected).all()
        assert (read(out, 1) != NODATA).all()


def test_partial_coverage_of_a_second_modality(tmp_path: Path) -> None:
    modalities = {'optical': 1, 'sar': 1}
    optical = write_raster(tmp_path / 'o.tif', np.ones((1, 64, 64), np.float32))
    sar = write_raster(tmp_path / 's.tif', np.ones((1, 20, 64), np.float32))
    model = PixelModel(modalities, 2)
    out = _predict(
        model,
        {'optical': optical, 'sar': sar},
        tmp_path / 'p.tif',
        modalities=modalities,
        class_names=['a', 'b'],
        patch_size=16,
        overlap=0,
    )
    flags = torch.cat(model.calls)
    assert flags[:, 0].all()
    # The 4 windows of rows 0-15 are covered by SAR; those of rows 16-31 only
    # on 4 of 16 rows (25%, below min_coverage), the others not at all.
    assert int(flags[:, 1].sum()) == 4
    assert (read(out, 1) != NODATA).all()
    model.calls.clear()
    _predict(
        model,
        {'optical': optical, 'sar': sar},
        tmp_path / 'q.tif',
        modalities=modalities,
        class_names=['a', 'b'],
        patch_size=16,
        overlap=0,
        min_coverage=0.2,
    )
    assert int(torch.cat(model.calls)[:, 1].sum()) == 8


def test_the_real_stars_model_predicts_any_subset(tmp_path: Path) -> None:
    from torchgeo_stars.models import STARS

    modalities = {'optical': 3, 'sar': 2}
    model = STARS(
        modalities,
        3,
        backbone='resnet18',
        decoder_channels=16,
        decoder_segmentation_channels=32,
        translator_channels=8,
        embedding_dim=8,
    )
    rng = np.random.default_rng(5)
    optical = write_raster(
        tmp_path / 'o.tif', rng.normal(size=(3, 80, 100)).astype(np.float32)
    )
    sar = write_raster(
        tmp_path / 's.tif', rng.uniform(1, 2, (2, 80, 100)).astype(np.float32)
    )
    for name, inputs in [
        ('both', {'optical': optical, 'sar': sar}),
        ('sar', {'sar': sar}),
    ]:
        out = _predict(
            model,
            inputs,
            tmp_path / f'{name}.tif',
            modalities=modalities,
            class_names=['a', 'b', 'c'],
            patch_size=64,
            overlap=16,
        )
        classes = read(out, 1)
        assert classes.shape == (80, 100)
        assert set(np.unique(classes)) <= {0, 1, 2}
        assert cog_validate(str(out))[0]


def test_statistics_normalise_each_modality(optical: Optical, tmp_path: Path) -> None:
    from torchgeo_stars.datasets import ModalityStatistics

    path, data = optical
    model = PixelModel(OPTICAL, 4)
    mean, std = (0.5, -1.0, 2.0), (2.0, 0.5, 3.0)
    out = _predict(
        model,
        {'optical': path},
        tmp_path / 'o.tif',
        probabilities='float32',
        statistics={'optical': ModalityStatistics(mean, std)},
    )
    normalised = (data - np.array(mean, np.float32)[:, None, None]) / np.array(
        std, np.float32
    )[:, None, None]
    expected = pixel_probabilities(model, {'optical': normalised})
    assert np.abs(read(probabilities_path(out)) - expected).max() < 1e-4


@pytest.mark.parametrize('device', ['auto', 'cpu'])
def test_device_is_resolved(device: str, optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    out = _predict(
        PixelModel(OPTICAL, 4), {'optical': path}, tmp_path / 'o.tif', device=device
    )
    assert out.exists()
