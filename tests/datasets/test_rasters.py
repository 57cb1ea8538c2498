"""Tests of the per-modality raster datasets."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from pyproj import CRS
from rasterio.enums import Resampling
from torchgeo.datasets import GeoDataset, RasterDataset
from torchgeo.datasets.utils import Sample

from torchgeo_stars.datasets import (
    DSMRaster,
    MaskRaster,
    ModalityRaster,
    OpticalRaster,
    SARRaster,
)
from torchgeo_stars.errors import ConfigurationError, DataError

from .geodata_utils import CORRUPT, MULTIMODAL, OPTICAL_REGEX, SENTINEL2, window

S2_REGEX = r'^T(?P<tile>\w{5})_(?P<date>\d{8})_(?P<band>B\d{2})\.tif$'


def read_file(path: Path) -> tuple[np.ndarray, float | None]:
    with rasterio.open(path) as src:
        return src.read().astype(np.float64), src.nodata


def full(dataset: RasterDataset) -> Sample:
    """Read the whole extent of a single-file dataset on its native grid."""
    x, y, t = dataset.bounds
    return dataset[x, y, t]


def test_optical_defaults_and_keys(optical: OpticalRaster) -> None:
    assert isinstance(optical, RasterDataset)
    assert optical.modality == 'optical'
    assert optical.bands == ('blue', 'green', 'red', 'nir')  # band descriptions
    assert optical.resampling == Resampling.bilinear
    sample = optical[window(0, 0, 8, 8)]
    assert set(sample) == {'image_optical', 'bounds', 'transform'}
    image = sample['image_optical']
    assert image.dtype == torch.float32
    assert image.shape == (4, 8, 8)
    # Known values: band b at (r, c) is 300 + 100 b + 4 r + 2 c
    assert image[2, 5, 6].item() == 300 + 200 + 20 + 12
    # Declared nodata (0) in the 4 x 4 top-left block is NaN, nothing else is
    assert torch.isnan(image[:, :4, :4]).all()
    assert torch.isfinite(image[:, 4:, :]).all()
    assert torch.isfinite(image[:, :, 4:]).all()


def test_outside_files_is_nan(optical: OpticalRaster) -> None:
    # Two columns west of the file: read as NaN, not as 0
    x, y = window(10, -2, 4, 6)
    image = optical[x, y]['image_optical']
    assert torch.isnan(image[:, :, :2]).all()
    assert torch.isfinite(image[:, :, 2:]).all()


def test_band_selection_order(optical: OpticalRaster) -> None:
    subset = OpticalRaster(
        MULTIMODAL / 'optical', bands=['nir', 'blue'], filename_regex=r'optical_.*'
    )
    both = subset[window(8, 8, 4, 4)]['image_optical']
    every = optical[window(8, 8, 4, 4)]['image_optical']
    assert torch.equal(both, every[[3, 0]])


def test_dates_from_file_names(optical: OpticalRaster, sar: SARRaster) -> None:
    interval = optical.index.index[0]
    assert interval.left == pd.Timestamp('2023-06-01')
    assert interval.right.date() == pd.Timestamp('2023-06-01').date()
    # A date-less file is valid at every date
    assert sar.index.index[0].left == pd.Timestamp.min
    assert sar.index.index[0].right == pd.Timestamp.max


def test_sar_linear_invalid_and_db() -> None:
    path = MULTIMODAL / 'sar' / 'sar.tif'
    data, _ = read_file(path)
    linear = SARRaster(path)
    assert linear.bands == ('VV', 'VH')
    image = full(linear)['image_sar'].double().numpy()
    valid = data > 0
    assert (~valid).any()
    assert (data < 0).any()
    assert np.array_equal(np.isnan(image), ~valid)
    np.testing.assert_allclose(image[valid], data[valid], rtol=1e-6)

    db = full(SARRaster(path, to_db=True))['image_sar'].double().numpy()
    assert np.array_equal(np.isnan(db), ~valid)
    np.testing.assert_allclose(db[valid], 10 * np.log10(data[valid]), rtol=1e-5)


def test_sar_db_input_keeps_negative_values() -> None:
    path = MULTIMODAL / 'sar' / 'sar.tif'
    data, _ = read_file(path)
    image = full(SARRaster(path, input_scale='db'))['image_sar'].double().numpy()
    # In dB, zeros and negatives are ordinary values
    assert np.isfinite(image).all()
    np.testing.assert_allclose(image, data, rtol=1e-6)


def test_sar_bad_options() -> None:
    path = MULTIMODAL / 'sar'
    with pytest.raises(ConfigurationError, match='input_scale'):
        SARRaster(path, input_scale='power')  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match='to_db'):
        SARRaster(path, to_db=True, input_scale='db')


def test_dsm_voids() -> None:
    path = MULTIMODAL / 'dsm' / 'dsm.tif'
    data, nodata = read_file(path)
    assert nodata == -9999
    image = full(DSMRaster(path))['image_dsm'].double().numpy()
    void = (data == nodata) | np.isnan(data)
    assert (data == nodata).any()
    assert np.isnan(data).any()
    assert np.array_equal(np.isnan(image), void)
    np.testing.assert_allclose(image[~void], data[~void], rtol=1e-6)


def test_dsm_min_valid() -> None:
    path = MULTIMODAL / 'dsm' / 'dsm.tif'
    data, _ = read_file(path)
    image = full(DSMRaster(path, min_valid=120.0))['image_dsm'].double().numpy()
    keep = np.isfinite(data) & (data >= 120.0)
    assert keep.any()
    assert (~keep).any()
    assert np.array_equal(np.isfinite(image), keep)


def test_mask(mask: MaskRaster) -> None:
    assert mask.resampling == Resampling.nearest
    sample = mask[window(16, 8, 20, 20)]
    assert set(sample) == {'mask', 'bounds', 'transform'}
    labels = sample['mask']
    assert labels.dtype == torch.int64
    assert labels.shape == (20, 20)
    # Square (class 1) at rows 20-29, cols 12-21 of the optical grid
    expected = torch.zeros(20, 20, dtype=torch.int64)
    expected[4:14, 4:14] = 1
    assert torch.equal(labels, expected)


def test_mask_ignore_index_outside_files() -> None:
    path = MULTIMODAL / 'mask'
    plain = MaskRaster(path)[window(50, -3, 4, 6)]['mask']
    ignored = MaskRaster(path, ignore_index=255)[window(50, -3, 4, 6)]['mask']
    assert (plain[:, :3] == 0).all()  # TorchGeo's default fill
    assert (ignored[:, :3] == 255).all()
    assert torch.equal(ignored[:, 3:], plain[:, 3:])
    assert (plain[:, 3:] == 2).all()


def test_mask_needs_one_band() -> None:
    with pytest.raises(DataError, match='one band'):
        MaskRaster(MULTIMODAL / 'optical')


def test_separate_files_per_band() -> None:
    dataset = OpticalRaster(
        SENTINEL2, filename_regex=S2_REGEX, separate_files=True, bands=['B08', 'B02']
    )
    assert dataset.all_bands == ('B02', 'B03', 'B04', 'B08')  # found in file names
    assert len(dataset) == 2  # one entry per acquisition, not per band file
    x, y = window(0, 0, 16, 16)
    rows, cols = np.mgrid[0:16, 0:16]
    for day, offset in (('2023-06-01', 0), ('2023-06-11', 5000)):
        t = slice(pd.Timestamp(day), pd.Timestamp(day) + pd.Timedelta(hours=23))
        image = dataset[x, y, t]['image_optical'].numpy()
        assert image.shape == (2, 16, 16)
        np.testing.assert_array_equal(image[0], 800 + 16 * rows + cols + offset)
        np.testing.assert_array_equal(image[1], 200 + 16 * rows + cols + offset)


def test_separate_files_without_dates() -> None:
    dataset = OpticalRaster(
        SENTINEL2,
        filename_regex=r'^T\w{5}_\d{8}_(?P<band>B\d{2})\.tif$',
        separate_files=True,
        bands=['B04'],
    )
    assert len(dataset) == 2
    assert dataset.index.index[0].left == pd.Timestamp.min
    image = dataset[window(0, 0, 16, 16)]['image_optical'].numpy()
    rows, cols = np.mgrid[0:16, 0:16]
    # Both scenes cover the window; the first file's valid pixels win
    np.testing.assert_array_equal(image[0], 400 + 16 * rows + cols)


def test_documented_subclass() -> None:
    class Sentinel2(OpticalRaster):
        filename_glob = 'T*_B0[2348].tif'
        filename_regex = S2_REGEX
        separate_files = True
        all_bands = ('B02', 'B03', 'B04', 'B08')

    dataset = Sentinel2(SENTINEL2, bands=['B04', 'B03', 'B02'])
    x, y, t = dataset.bounds
    image = dataset[x, y, t]['image_optical']
    assert image.shape[0] == 3
    assert dataset.num_bands == 3


def test_generic_modality_and_transforms() -> None:
    seen: list[set[str]] = []

    def record(sample: Sample) -> Sample:
        seen.append(set(sample))
        return sample

    dataset = ModalityRaster(
        MULTIMODAL / 'dsm', 'EPSG:32631', modality='height', transforms=record
    )
    assert dataset.crs.to_epsg() == 32631
    sample = dataset[window(0, 0, 4, 4)]
    assert 'image_height' in sample
    assert 'image' not in sample
    assert seen == [{'image_height', 'bounds', 'transform'}]


@pytest.mark.parametrize('name', [None, '', 'with space', 'a-b'])
def test_modality_name_required(name: str | None) -> None:
    with pytest.raises(ConfigurationError, match='modality'):
        ModalityRaster(MULTIMODAL / 'dsm', modality=name)


def test_resampling_override() -> None:
    dataset = OpticalRaster(MULTIMODAL / 'optical', resampling='nearest')
    assert dataset.resampling == Resampling.nearest
    with pytest.raises(ConfigurationError, match='resampling'):
        OpticalRaster(MULTIMODAL / 'optical', resampling='magic')


# Errors ---------------------------------------------------------------------


def test_no_matching_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"filename_glob '\*\.tif'") as info:
        SARRaster(tmp_path)
    assert str(tmp_path) in str(info.value)
    missing = tmp_path / 'nope'
    with pytest.raises(DataError, match='does not exist'):
        DSMRaster(missing)
    with pytest.raises(DataError, match=r'\*\.jp2'):
        OpticalRaster(MULTIMODAL / 'optical', filename_glob='*.jp2')


def test_regex_matches_nothing() -> None:
    with pytest.raises(DataError, match='filename_regex') as info:
        OpticalRaster(MULTIMODAL / 'optical', filename_regex=r'S2_.*')
    assert 'optical_20230601.tif' in str(info.value)


def test_wrong_band_names() -> None:
    with pytest.raises(DataError, match='valid band names') as info:
        OpticalRaster(MULTIMODAL / 'optical', bands=['red', 'B99'])
    message = str(info.value)
    assert 'B99' in message
    assert all(name in message for name in ('blue', 'green', 'red', 'nir'))
    with pytest.raises(DataError, match="'B02', 'B03', 'B04', 'B08'"):
        OpticalRaster(
            SENTINEL2, filename_regex=S2_REGEX, separate_files=True, bands=['B8A']
        )


def test_all_bands_count_mismatch() -> None:
    with pytest.raises(DataError, match='has 4'):
        OpticalRaster(MULTIMODAL / 'optical', all_bands=['r', 'g', 'b'])


def test_separate_files_first_band_missing_everywhere() -> None:
    with pytest.raises(DataError, match="no file of band 'B05'"):
        OpticalRaster(
            SENTINEL2,
            filename_regex=S2_REGEX,
            separate_files=True,
            all_bands=['B02', 'B05'],
            bands=['B05', 'B02'],
        )


def test_separate_files_needs_band_group() -> None:
    with pytest.raises(ConfigurationError, match='band'):
        OpticalRaster(SENTINEL2, separate_files=True)


def test_unreadable_file_named() -> None:
    # TorchGeo alone would skip garbage.tif silently
    with pytest.raises(DataError, match=r'garbage\.tif'):
        OpticalRaster(CORRUPT / 'unreadable')
    with pytest.raises(DataError, match=r'garbage\.tif'):
        OpticalRaster(CORRUPT / 'unreadable' / 'garbage.tif')
    good = OpticalRaster(CORRUPT / 'unreadable' / 'good.tif')
    assert len(good) == 1


def test_truncated_file_named_at_read_time() -> None:
    dataset = OpticalRaster(CORRUPT / 'truncated')
    x, y, t = dataset.bounds
    with pytest.raises(DataError, match=r'truncated\.tif'):
        dataset[x, y, t]


def test_missing_band_file(tmp_path: Path) -> None:
    for path in SENTINEL2.glob('*.tif'):
        if path.name != 'T31UFQ_20230611_B03.tif':
            shutil.copy(path, tmp_path)
    with pytest.raises(DataError, match=r'T31UFQ_20230611_B03\.tif'):
        OpticalRaster(
            tmp_path,
            filename_regex=S2_REGEX,
            separate_files=True,
            all_bands=['B02', 'B03', 'B04', 'B08'],
        )


def test_crs_follows_the_setter(optical: OpticalRaster) -> None:
    utm32 = CRS.from_epsg(32632)
    reference = OpticalRaster(
        MULTIMODAL / 'optical', filename_regex=OPTICAL_REGEX, crs=utm32
    )
    assert optical.crs == CRS.from_epsg(32631)  # looked up and kept
    optical[window(4, 4, 8, 8)]  # file query prepared in the old CRS
    optical.crs = utm32  # as TorchGeo's ``&`` sets it
    assert optical.crs == utm32
    assert optical.crs is optical.index.crs
    x, y, _ = reference.bounds
    index = (slice(x.start, x.start + 80, 10.0), slice(y.stop - 80, y.stop, 10.0))
    moved, expected = optical[index], reference[index]
    assert torch.equal(moved['bounds'], expected['bounds'])
    assert torch.isfinite(expected['image_optical']).any()
    assert torch.allclose(
        moved['image_optical'], expected['image_optical'], equal_nan=True
    )


def test_bounds_follow_the_crs_and_resolution(optical: OpticalRaster) -> None:
    def fresh() -> tuple[slice, slice, slice]:
        return GeoDataset.bounds.fget(optical)  # type: ignore[attr-defined,no-any-return]

    before = optical.bounds
    assert before == fresh()
    optical.crs = CRS.from_epsg(32632)
    assert optical.bounds == fresh()
    assert optical.bounds[0].start != before[0].start  # reprojected
    optical.res = (20.0, 20.0)
    assert optical.bounds == fresh()
    assert optical.bounds[0].step == 20.0


def test_a_pickled_raster_reads_as_the_original(optical: OpticalRaster) -> None:
    index = window(2, 3, 6, 5)
    expected = optical[index]  # CRS, bounds, file query and tiles now kept
    copy = pickle.loads(pickle.dumps(optical))  # as a spawned worker gets it
    derived = {'_index_crs', '_index_bounds', '_index_query', '_window_crs'}
    assert not derived & set(copy.__dict__)
    sample = copy[index]
    assert torch.equal(sample['bounds'], expected['bounds'])
    assert torch.equal(
        sample['image_optical'].nan_to_num(-1), expected['image_optical'].nan_to_num(-1)
    )
    assert copy.crs == optical.crs
    assert copy.bounds == optical.bounds
