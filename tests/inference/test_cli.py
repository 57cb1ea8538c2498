import os
from pathlib import Path

import numpy as np
import pytest
import torch
from rio_cogeo.cogeo import cog_validate

from torchgeo_stars.inference import Predictor, cli, join_main, main

from .helpers import PixelModel, predict_args, read, write_raster


@pytest.fixture
def rasters(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    folder = tmp_path / 'optical'
    folder.mkdir()
    write_raster(folder / 'a.tif', rng.normal(size=(3, 50, 60)).astype(np.float32))
    sar = write_raster(
        tmp_path / 'sar.tif', rng.uniform(1, 2, (1, 50, 60)).astype(np.float32)
    )
    return {'optical': folder, 'sar': sar}


def test_cli_predicts_a_cog(
    fake_checkpoint: Path, rasters: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / 'map.tif'
    code = main(
        predict_args(
            fake_checkpoint,
            output,
            '--optical',
            str(rasters['optical']),
            '--sar',
            str(rasters['sar']),
            '--probabilities',
            'uint8',
        )
    )
    assert code == 0
    assert cog_validate(str(output))[0]
    assert read(output, 1).shape == (50, 60)
    assert (tmp_path / 'map_probabilities.tif').exists()
    # A second run is refused without --overwrite, accepted with it.
    assert (
        main(predict_args(fake_checkpoint, output, '--sar', str(rasters['sar']))) == 1
    )
    assert (
        main(
            predict_args(
                fake_checkpoint, output, '--sar', str(rasters['sar']), '--overwrite'
            )
        )
        == 0
    )


def test_cli_generic_modality_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rasters: dict[str, Path]
) -> None:
    def load(path: Path) -> Predictor:
        return Predictor(PixelModel({'radar': 1}, 2), {'radar': 1}, ['a', 'b'])

    monkeypatch.setattr(cli, 'load_predictor', load)
    output = tmp_path / 'r.tif'
    assert (
        main(
            predict_args(
                tmp_path / 'x.ckpt', output, '--input', 'radar', str(rasters['sar'])
            )
        )
        == 0
    )
    assert output.exists()


@pytest.mark.parametrize(
    ('extra', 'message'),
    [
        (['--optical', 'missing.tif'], 'does not exist'),
        (['--dsm', 'SAR'], "modalities ['dsm'] were given"),
        (['--sar', 'SAR', '--overlap', '40'], 'overlap must be'),
        (['--sar', 'SAR', '--num-shards', '2', '--shard', '5'], 'shard must be'),
    ],
)
def test_cli_errors_are_one_line(
    fake_checkpoint: Path,
    rasters: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    extra = [str(rasters['sar']) if e == 'SAR' else e for e in extra]
    assert main(predict_args(fake_checkpoint, tmp_path / 'o.tif', *extra)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'o.tif').exists()


def test_cli_refuses_a_file_that_is_not_a_checkpoint(
    tmp_path: Path, rasters: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / 'bogus.ckpt'
    bogus.write_bytes(os.urandom(1000))
    plain = tmp_path / 'plain.ckpt'
    torch.save({'a': torch.ones(1)}, plain)
    for checkpoint in (bogus, plain):
        code = main(
            predict_args(checkpoint, tmp_path / 'o.tif', '--sar', str(rasters['sar']))
        )
        err = capsys.readouterr().err
        assert code == 1
        assert 'not a STARS checkpoint' in err
        assert len(err.strip().splitlines()) == 1


def test_cli_argument_errors_return_two(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(['--output', str(tmp_path / 'o.tif')]) == 2
    assert main(['--checkpoint', 'x', '--output', str(tmp_path / 'o.tif')]) == 2
    assert 'give at least one input' in capsys.readouterr().err
    assert join_main([]) == 2


def test_cli_shards_and_join(fake_checkpoint: Path, tmp_path: Path) -> None:
    data = np.random.default_rng(1).normal(size=(3, 600, 30)).astype(np.float32)
    optical = write_raster(tmp_path / 'tall.tif', data)
    single = tmp_path / 'single.tif'
    assert main(predict_args(fake_checkpoint, single, '--optical', str(optical))) == 0
    parts = []
    for shard in (0, 1):
        part = tmp_path / f'part{shard}.tif'
        args = predict_args(
            fake_checkpoint,
            part,
            '--optical',
            str(optical),
            '--num-shards',
            '2',
            '--shard',
            str(shard),
        )
        assert main(args) == 0
        parts.append(str(part))
    joined = tmp_path / 'joined.tif'
    assert join_main([*parts, '--output', str(joined)]) == 0
    np.testing.assert_array_equal(read(joined), read(single))
