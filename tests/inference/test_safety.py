"""predict-geotiff never writes over an input and says when an input is empty."""

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from torchgeo_stars.errors import ConfigurationError, DataError, DataWarning
from torchgeo_stars.inference import join_shards, main, predict_geotiff
from torchgeo_stars.inference.paths import check_outputs_are_not_inputs, same_file

from .helpers import PIXEL_MODALITIES, PixelModel, predict_args, read, write_raster


def checksum(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def rasters(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folder = tmp_path / 'optical'
    folder.mkdir()
    optical = rng.normal(size=(3, 40, 50)).astype(np.float32)
    sar = rng.uniform(1, 2, (1, 40, 50)).astype(np.float32)
    return {
        'optical': write_raster(folder / 'a.tif', optical),
        'sar': write_raster(tmp_path / 'sar.tif', sar),
    }


def predict_api(inputs: dict[str, Path], output: Path, **options: Any) -> Path:
    """``predict_geotiff`` with a pixel model of *inputs*' modalities, small patches."""
    modalities = {name: PIXEL_MODALITIES.get(name, 3) for name in inputs}
    settings: dict[str, Any] = {'patch_size': 32, 'overlap': 8, **options}
    return predict_geotiff(
        PixelModel(modalities, 2),
        inputs,
        output,
        modalities=modalities,
        class_names=['a', 'b'],
        device='cpu',
        progress=False,
        **settings,
    )


def run(checkpoint: Path, output: Path, *extra: str) -> int:
    return main(predict_args(checkpoint, output, *extra))


def test_same_file_sees_links_and_spellings(tmp_path: Path) -> None:
    data = tmp_path / 'data.tif'
    data.write_bytes(b'x')
    (tmp_path / 'link.tif').symlink_to(data)
    os.link(data, tmp_path / 'hard.tif')
    assert same_file(data, tmp_path / 'link.tif')
    assert same_file(data, tmp_path / 'hard.tif')
    assert same_file(data, tmp_path / 'sub' / '..' / 'data.tif')
    assert not same_file(data, tmp_path / 'other.tif')
    assert same_file(tmp_path / 'new.tif', tmp_path / '.' / 'new.tif')
    with pytest.raises(ConfigurationError, match=r'link\.tif is also an input'):
        check_outputs_are_not_inputs([tmp_path / 'link.tif'], [tmp_path / 'x', data])
    check_outputs_are_not_inputs([tmp_path / 'out.tif'], [data])


@pytest.mark.parametrize('overwrite', [False, True])
def test_output_that_is_an_input_is_refused(
    fake_checkpoint: Path,
    rasters: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    overwrite: bool,
) -> None:
    sar = rasters['sar']
    before = checksum(sar)
    extra = ['--overwrite'] if overwrite else []
    status = run(fake_checkpoint, sar, '--sar', str(sar), *extra)
    assert status == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f'output {sar} is also an input' in error
    assert checksum(sar) == before
    # The same through a folder input and through the probabilities file.
    optical = rasters['optical']
    before = checksum(optical)
    status = run(fake_checkpoint, optical, '--optical', str(optical.parent), *extra)
    assert status == 1
    probabilities_input = optical.with_name('p_probabilities.tif')
    probabilities_input.write_bytes(optical.read_bytes())
    before_probabilities = checksum(probabilities_input)
    status = run(
        fake_checkpoint,
        optical.with_name('p.tif'),
        '--sar',
        str(sar),
        '--optical',
        str(probabilities_input),
        '--probabilities',
        'uint8',
        *extra,
    )
    assert status == 1
    assert checksum(probabilities_input) == before_probabilities
    assert not optical.with_name('p.tif').exists()
    assert checksum(optical) == before


def test_an_all_nodata_input_is_an_error(tmp_path: Path) -> None:
    empty = write_raster(
        tmp_path / 'empty.tif', np.zeros((3, 40, 50), np.float32), nodata=0
    )
    with pytest.raises(DataError, match=r'optical input .*empty.tif: no valid pixel'):
        predict_api({'optical': empty}, tmp_path / 'out.tif')
    assert not (tmp_path / 'out.tif').exists()
    # NaN everywhere (no nodata value) is just as empty.
    nan = write_raster(tmp_path / 'nan.tif', np.full((3, 40, 50), np.nan, np.float32))
    with pytest.raises(DataError, match=r'nan\.tif: no valid pixel'):
        predict_api({'optical': nan}, tmp_path / 'out.tif')


def test_an_empty_input_beside_others_is_a_warning(
    fake_checkpoint: Path,
    rasters: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The SAR file is nodata where the output area is, valid elsewhere.
    sar = np.zeros((1, 40, 100), np.float32)
    sar[:, :, 50:] = 1.5
    partial = write_raster(tmp_path / 'partial.tif', sar, nodata=0)
    output = tmp_path / 'map.tif'
    status = run(
        fake_checkpoint,
        output,
        '--optical',
        str(rasters['optical']),
        '--sar',
        str(partial),
    )
    assert status == 0
    error = capsys.readouterr().err.strip()
    assert error.startswith('torchgeo-stars predict-geotiff: warning: sar input ')
    assert 'partial.tif has no valid pixel' in error
    assert len(error.splitlines()) == 1
    assert (read(output, 1) != 255).all()
    # Alone, the SAR file sets the output area to its own extent: valid there.
    assert run(fake_checkpoint, tmp_path / 'x.tif', '--sar', str(partial)) == 0
    with pytest.warns(DataWarning, match='partial.tif'):
        predict_api(
            {'optical': rasters['optical'], 'sar': partial}, tmp_path / 'api.tif'
        )


def test_join_refuses_an_output_that_is_a_part(tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(3, 600, 20)).astype(np.float32)
    raster = write_raster(tmp_path / 'tall.tif', data)
    parts = [
        predict_api(
            {'optical': raster},
            tmp_path / f'part{shard}.tif',
            patch_size=64,
            overlap=16,
            num_shards=2,
            shard=shard,
        )
        for shard in range(2)
    ]
    before = checksum(parts[0])
    for overwrite in (False, True):
        with pytest.raises(ConfigurationError, match=r'part0\.tif is also an input'):
            join_shards(parts, parts[0], overwrite=overwrite)
    assert checksum(parts[0]) == before
