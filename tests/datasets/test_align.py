"""Tests of aligning every modality once onto one grid (datasets/align.py)."""

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from pyproj import Transformer
from rasterio.warp import Resampling, reproject
from rio_cogeo.cogeo import cog_validate

from torchgeo_stars.datasets import DSMRaster, MaskRaster, SARRaster
from torchgeo_stars.datasets import align as align_module
from torchgeo_stars.datasets.align import MANIFEST_NAME, AlignedRasters, align_rasters
from torchgeo_stars.errors import ConfigurationError, DataError

from .geodata_utils import CORRUPT, DATA, MULTIMODAL, RES, SIZE, X0, Y0
from .test_pairing import SOURCES, bright_centre, centroid

SCENE = DATA / 'synthetic' / 'scene'
NAMES = ('optical', 'sar', 'dsm')


def inputs(root: Path = MULTIMODAL) -> dict[str, Path]:
    return {name: root / name for name in NAMES}


def copy_fixture(tmp_path: Path) -> Path:
    """A writable copy of the multimodal fixture (to touch its files)."""
    root = tmp_path / 'inputs'
    for name in (*NAMES, 'mask'):
        shutil.copytree(MULTIMODAL / name, root / name)
    return root


def read(path: Path) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    with rasterio.open(path) as src:
        return src.read(), {
            'crs': src.crs,
            'transform': src.transform,
            'dtype': src.dtypes[0],
            'nodata': src.nodata,
            'descriptions': src.descriptions,
            'tags': src.tags(),
        }


def outputs_state(result: AlignedRasters) -> dict[str, int]:
    return {name: path.stat().st_mtime_ns for name, path in result.paths.items()}


def leftovers(output: Path) -> list[Path]:
    """Temporary files or folders left in the output."""
    return [p for p in output.rglob('*') if p.name.startswith('.')]


@pytest.fixture(scope='module')
def aligned(tmp_path_factory: pytest.TempPathFactory) -> AlignedRasters:
    output = tmp_path_factory.mktemp('aligned')
    return align_rasters(inputs(), output, mask=MULTIMODAL / 'mask', progress=False)


def test_layout_grid_and_cogs(aligned: AlignedRasters) -> None:
    assert aligned.written == ('optical', 'sar', 'dsm', 'mask')
    assert set(aligned.paths) == {'optical', 'sar', 'dsm', 'mask'}
    _, source = read(MULTIMODAL / 'optical' / 'optical_20230601.tif')
    for name, path in aligned.paths.items():
        assert path == aligned.output / name / f'{name}.tif'
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        _, meta = read(path)
        # Every raster on the optical grid (the first modality's)
        assert meta['crs'] == source['crs']
        assert meta['transform'] == source['transform']
        with rasterio.open(path) as src:
            assert src.shape == (SIZE, SIZE)
            assert src.profile['tiled']
            assert src.compression is not None
    assert (aligned.output / MANIFEST_NAME).is_file()
    assert not leftovers(aligned.output)


def test_optical_bit_identical_on_its_grid(aligned: AlignedRasters) -> None:
    data, meta = read(aligned.paths['optical'])
    source_data, source = read(MULTIMODAL / 'optical' / 'optical_20230601.tif')
    assert np.array_equal(data, source_data)
    assert meta['dtype'] == source['dtype'] == 'uint16'
    assert meta['nodata'] == source['nodata'] == 0
    assert meta['descriptions'] == ('blue', 'green', 'red', 'nir')
    assert source['tags'].items() <= meta['tags'].items()


def test_metadata_kept_through_a_warp(aligned: AlignedRasters) -> None:
    _, sar = read(aligned.paths['sar'])
    assert sar['dtype'] == 'float32'
    assert sar['descriptions'] == ('VV', 'VH')
    assert sar['nodata'] == 0  # linear SAR: 0 is invalid
    _, dsm = read(aligned.paths['dsm'])
    assert dsm['dtype'] == 'float32'
    assert dsm['nodata'] == -9999


def reference_warp(path: Path, band: int, like: Path) -> np.ndarray[Any, Any]:
    """rasterio's own bilinear warp of a file onto the grid of *like*."""
    with rasterio.open(path) as src, rasterio.open(like) as dst:
        out = np.full(dst.shape, np.nan, np.float32)
        reproject(
            src.read(band).astype(np.float32),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=src.nodata,
            dst_transform=dst.transform,
            dst_crs=dst.crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    return out


@pytest.mark.parametrize('block_size', [16, 1024])
@pytest.mark.parametrize('name', ['sar', 'dsm'])
def test_within_half_a_pixel_of_a_rasterio_warp(
    tmp_path: Path, name: str, block_size: int
) -> None:
    _, file, threshold, _ = next(s for s in SOURCES if s[0] == f'image_{name}')
    aligned = align_rasters(
        {'optical': MULTIMODAL / 'optical', name: MULTIMODAL / name},
        tmp_path / 'aligned',
        progress=False,
        block_size=block_size,
    )
    data, _ = read(aligned.paths[name])
    reference = reference_warp(MULTIMODAL / file, 1, aligned.paths[name])
    found = centroid(torch.from_numpy(data[0] > threshold))
    expected = centroid(torch.from_numpy(reference > threshold))
    assert ((found - expected).abs() <= 0.5).all(), (found, expected)
    # ... and where the source file puts the square on the ground
    ex, ey = bright_centre(str(MULTIMODAL / file), threshold, 'EPSG:32631')
    truth = torch.tensor([(Y0 - ey) / RES - 0.5, (ex - X0) / RES - 0.5]).double()
    assert ((found - truth).abs() <= 0.5).all(), (found, truth)


@pytest.mark.parametrize(
    ('name', 'cls'), [('sar', SARRaster), ('dsm', DSMRaster), ('mask', MaskRaster)]
)
def test_same_values_as_the_dataset_reads(
    aligned: AlignedRasters, name: str, cls: type[Any]
) -> None:
    # Stored as the source dtype, the values are those the modality dataset
    # reads on the same grid (one window: GDAL's approximate transformer
    # makes windows of other sizes differ by a small fraction of a pixel, so
    # the dataset reads this window on its own, not from warped tiles).
    dataset = cls(MULTIMODAL / name, crs='EPSG:32631', res=RES, warp_cache_mb=0)
    window = dataset[X0 : X0 + SIZE * RES : RES, Y0 - SIZE * RES : Y0 : RES]
    stored = cls(aligned.paths[name])[
        X0 : X0 + SIZE * RES : RES, Y0 - SIZE * RES : Y0 : RES
    ]
    key = 'mask' if name == 'mask' else f'image_{name}'
    assert torch.equal(window[key].isnan(), stored[key].isnan())
    assert torch.equal(window[key].nan_to_num(), stored[key].nan_to_num())


@pytest.mark.parametrize(
    ('images', 'labels'),
    [
        # Same CRS and pixel size, grid offset from the optical one
        ({'optical': SCENE / 'optical'}, SCENE / 'mask'),
        # Another CRS (UTM 32N) and pixel size (20 m): labels resampled
        ({'dsm': MULTIMODAL / 'dsm'}, MULTIMODAL / 'mask'),
    ],
)
def test_labels_nearest(tmp_path: Path, images: dict[str, Path], labels: Path) -> None:
    result = align_rasters(images, tmp_path / 'out', mask=labels, progress=False)
    (label_file,) = labels.glob('*.tif')
    with rasterio.open(result.paths['mask']) as dst, rasterio.open(label_file) as src:
        aligned = dst.read(1).ravel()
        assert dst.dtypes[0] == src.dtypes[0] == 'uint8'
        assert dst.nodata == src.nodata
        source = src.read(1)
        rows, cols = np.mgrid[0 : dst.height, 0 : dst.width]
        xs, ys = rasterio.transform.xy(dst.transform, rows.ravel(), cols.ravel())
        to_source = Transformer.from_crs(dst.crs, src.crs, always_xy=True)
        sx, sy = to_source.transform(np.asarray(xs), np.asarray(ys))
        col, row = ~src.transform @ (np.asarray(sx), np.asarray(sy))
    # Where no file is: the file's nodata, else 0 (as MaskRaster reads it)
    fill = 0 if src.nodata is None else int(src.nodata)
    # Each pixel holds the label under its centre (or, within GDAL's
    # approximate reprojection, 1/8 pixel, under a neighbour's): never a
    # value interpolated between classes.
    matches = np.zeros(aligned.size, dtype=bool)
    for dr in (-0.125, 0.125):
        for dc in (-0.125, 0.125):
            r = np.floor(row + dr).astype(int)
            c = np.floor(col + dc).astype(int)
            ok = (r >= 0) & (r < source.shape[0]) & (c >= 0) & (c < source.shape[1])
            expected = np.full(aligned.size, fill, dtype=source.dtype)
            expected[ok] = source[r[ok], c[ok]]
            matches |= aligned == expected
    assert matches.all()
    covered = (
        (row >= 0) & (row < source.shape[0]) & (col >= 0) & (col < source.shape[1])
    )
    assert covered.sum() > aligned.size // 2
    assert set(np.unique(aligned)) <= set(np.unique(source)) | {fill}


def test_pixels_no_file_reaches(tmp_path: Path) -> None:
    # The grid reaches 32 pixels east of every file: whole blocks of nothing
    result = align_rasters(
        {'optical': MULTIMODAL / 'optical'},
        tmp_path / 'aligned',
        mask=MULTIMODAL / 'mask',
        bounds=(X0, Y0 - SIZE * RES, X0 + (SIZE + 32) * RES, Y0),
        options={'mask': {'ignore_index': 99}},
        block_size=16,
        progress=False,
    )
    optical, meta = read(result.paths['optical'])
    labels, _ = read(result.paths['mask'])
    source, _ = read(MULTIMODAL / 'optical' / 'optical_20230601.tif')
    assert np.array_equal(optical[:, :, :SIZE], source)  # on the same pixel grid
    assert (optical[:, :, SIZE:] == meta['nodata']).all()
    assert (labels[0, :, SIZE:] == 99).all()
    assert (labels[0, :, :SIZE] != 99).all()


def test_manifest_reuse_and_invalidation(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    output = tmp_path / 'aligned'
    first = align_rasters(inputs(root), output, mask=root / 'mask', progress=False)
    assert first.written == ('optical', 'sar', 'dsm', 'mask')
    before = outputs_state(first)

    second = align_rasters(inputs(root), output, mask=root / 'mask', progress=False)
    assert second.written == ()
    assert second.grid == first.grid
    assert outputs_state(second) == before

    # A changed input (newer modification time) is re-done, the others kept
    sar_file = root / 'sar' / 'sar.tif'
    stat = sar_file.stat()
    os.utime(sar_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = align_rasters(inputs(root), output, mask=root / 'mask', progress=False)
    assert third.written == ('sar',)
    after = outputs_state(third)
    assert after['sar'] != before['sar']
    assert {n: t for n, t in after.items() if n != 'sar'} == {
        n: t for n, t in before.items() if n != 'sar'
    }
    assert not leftovers(output)


def test_modalities_not_asked_again_are_kept(tmp_path: Path) -> None:
    output = tmp_path / 'aligned'
    first = align_rasters(inputs(), output, mask=MULTIMODAL / 'mask', progress=False)
    # e.g. prediction after training: the same images, no labels
    again = align_rasters(inputs(), output, progress=False)
    assert again.written == ()
    assert set(again.paths) == set(NAMES)
    assert first.paths['mask'].is_file()
    only_dsm = align_rasters(
        {'optical': MULTIMODAL / 'optical', 'dsm': MULTIMODAL / 'dsm'},
        output,
        progress=False,
    )
    assert only_dsm.written == ()
    # Other files for a modality already aligned are another request
    with pytest.raises(ConfigurationError, match='other inputs'):
        align_rasters(
            {'optical': MULTIMODAL / 'optical', 'sar': MULTIMODAL / 'dsm'},
            output,
            progress=False,
        )


def test_integer_values_never_round_onto_nodata() -> None:
    values = np.array([[[0.3, np.nan, 5.2, 70000.0]]], np.float32)
    stored = align_module._stored(values, 'uint16', 0)
    assert stored.tolist() == [[[1, 0, 5, 65535]]]
    labels = np.array([[[np.nan, 254.6]]], np.float32)
    assert align_module._stored(labels, 'uint8', 255).tolist() == [[[255, 254]]]


def test_interrupted_run_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / 'aligned'
    real_read = align_module._ModalityReader.read
    calls = []

    def interrupted(self: Any, window: Any) -> Any:
        calls.append(window)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_read(self, window)

    monkeypatch.setattr(align_module._ModalityReader, 'read', interrupted)
    with pytest.raises(KeyboardInterrupt):
        align_rasters(inputs(), output, progress=False, block_size=16)
    # optical (a copy) was complete; SAR was interrupted mid-write
    assert sorted(p.name for p in output.rglob('*.tif')) == ['optical.tif']
    assert not leftovers(output)

    monkeypatch.setattr(align_module._ModalityReader, 'read', real_read)
    rest = align_rasters(inputs(), output, progress=False, block_size=16)
    assert rest.written == ('sar', 'dsm')


def test_no_space_left_removes_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(align_module, '_to_cog', disk_full)
    output = tmp_path / 'aligned'
    with pytest.raises(ConfigurationError, match=f'no space left .*{output}'):
        align_rasters(inputs(), output, progress=False)
    assert not list(output.rglob('*.tif'))
    assert not leftovers(output)


def test_no_overlap_names_files_and_bounds(tmp_path: Path) -> None:
    output = tmp_path / 'aligned'
    far = MULTIMODAL / 'far' / 'optical_20230601.tif'
    with pytest.raises(DataError, match=r'do not overlap: dsm .*far.*bounds \(835600'):
        align_rasters(
            {'optical': MULTIMODAL / 'optical', 'dsm': far}, output, progress=False
        )
    assert not output.exists()


@pytest.mark.parametrize('name', ['truncated/truncated.tif', 'unreadable/garbage.tif'])
def test_unreadable_or_truncated_input(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=f'dsm input .*{name}.* cannot be read'):
        align_rasters(
            {'optical': MULTIMODAL / 'optical', 'dsm': CORRUPT / name},
            tmp_path / 'aligned',
            progress=False,
        )


def test_output_inside_an_input_folder(tmp_path: Path) -> None:
    root = copy_fixture(tmp_path)
    with pytest.raises(ConfigurationError, match='inside the sar input folder'):
        align_rasters(inputs(root), root / 'sar' / 'aligned', progress=False)
    assert not (root / 'sar' / 'aligned').exists()


def test_output_would_overwrite_an_input(tmp_path: Path) -> None:
    output = tmp_path / 'aligned'
    (output / 'optical').mkdir(parents=True)
    source = output / 'optical' / 'optical.tif'
    shutil.copy(MULTIMODAL / 'optical' / 'optical_20230601.tif', source)
    before = source.read_bytes()
    with pytest.raises(ConfigurationError, match='would be overwritten'):
        align_rasters({'optical': source}, output, progress=False)
    assert source.read_bytes() == before


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    output = tmp_path / 'aligned'
    (output / 'sar').mkdir(parents=True)
    other = output / 'sar' / 'other.tif'
    other.write_bytes(b'not ours')
    with pytest.raises(ConfigurationError, match=r'not written by align.*--overwrite'):
        align_rasters(inputs(), output, progress=False)
    assert other.read_bytes() == b'not ours'
    result = align_rasters(inputs(), output, progress=False, overwrite=True)
    assert not other.exists()  # would be read as SAR next to the aligned file
    assert result.paths['sar'].is_file()

    # Rasters aligned from other inputs (or onto another grid) are not replaced
    with pytest.raises(ConfigurationError, match=r'other inputs .*--overwrite'):
        align_rasters(inputs(), output, res=20, progress=False)
    again = align_rasters(inputs(), output, res=20, progress=False, overwrite=True)
    assert again.grid.res == (20.0, 20.0)


def test_user_grid_and_options(tmp_path: Path) -> None:
    result = align_rasters(
        {'dsm': MULTIMODAL / 'dsm', 'optical': MULTIMODAL / 'optical'},
        tmp_path / 'aligned',
        crs='EPSG:32631',
        res=20,
        bounds=(X0, Y0 - 320, X0 + 320, Y0),
        options={'dsm': {'min_valid': 120.0}},
        progress=False,
    )
    assert (result.grid.width, result.grid.height) == (16, 16)
    data, meta = read(result.paths['dsm'])
    valid = data[0] != meta['nodata']
    assert valid.any()
    assert (data[0][valid] >= 120.0).all()
    with pytest.raises(ConfigurationError, match=r"\['to_db'\] do not apply"):
        align_rasters(
            inputs(), tmp_path / 'x', options={'sar': {'to_db': True}}, progress=False
        )
    with pytest.raises(ConfigurationError, match='no input given'):
        align_rasters({}, tmp_path / 'x')
