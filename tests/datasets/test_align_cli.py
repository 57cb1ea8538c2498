"""Tests of the ``torchgeo-stars align`` command."""

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from torchgeo_stars.datasets import align as align_module
from torchgeo_stars.main import main

from .geodata_utils import CORRUPT, MULTIMODAL

ARGS = [
    'align',
    '--optical',
    str(MULTIMODAL / 'optical'),
    '--sar',
    str(MULTIMODAL / 'sar' / 'sar.tif'),
    '--dsm',
    str(MULTIMODAL / 'dsm'),
    '--mask',
    str(MULTIMODAL / 'mask'),
    '--no-progress',
]


def test_align_then_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / 'aligned'
    assert main([*ARGS, '--output', str(output)]) == 0
    out = capsys.readouterr().out
    assert 'wrote optical, sar, dsm, mask' in out
    assert '64 x 64 pixels of 10 x 10 in EPSG:32631' in out
    for name in ('optical', 'sar', 'dsm', 'mask'):
        assert (output / name / f'{name}.tif').is_file()
    assert main([*ARGS, '--output', str(output)]) == 0
    assert 'up to date, nothing to do' in capsys.readouterr().out


def test_sar_first_gives_the_grid_unless_overridden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sar = ['align', '--sar', str(MULTIMODAL / 'sar'), '--dsm', str(MULTIMODAL / 'dsm')]
    assert main([*sar, '--output', str(tmp_path / 'a'), '--no-progress']) == 0
    with rasterio.open(tmp_path / 'a' / 'dsm' / 'dsm.tif') as src:
        assert src.crs.to_epsg() == 3857
        assert src.res == (28.0, 28.0)
    args = [*sar, '--output', str(tmp_path / 'b'), '--crs', 'EPSG:32631']
    assert main([*args, '--res', '15', '--no-progress']) == 0
    with rasterio.open(tmp_path / 'b' / 'sar' / 'sar.tif') as src:
        assert src.crs.to_epsg() == 32631
        assert src.res == (15.0, 15.0)
        assert np.isfinite(src.read(1)).any()


def test_progress_bar_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ['align', '--dsm', str(MULTIMODAL / 'dsm'), '--output', str(tmp_path / 'a')]
    assert main(args) == 0
    assert 'align' in capsys.readouterr().err
    args = [*args[:-1], str(tmp_path / 'b'), '--no-progress']
    assert main(args) == 0
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize(
    ('extra', 'expected'),
    [
        (['--dsm', str(CORRUPT / 'truncated')], 'truncated.tif cannot be read'),
        (['--dsm', str(MULTIMODAL / 'far')], 'inputs do not overlap: dsm'),
        (['--dsm', str(MULTIMODAL / 'nothing')], 'dsm input .*nothing does not exist'),
        (['--crs', 'EPSG:nonsense'], "crs 'EPSG:nonsense' is not"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    args = ['align', '--optical', str(MULTIMODAL / 'optical'), *extra]
    assert main([*args, '--output', str(tmp_path / 'a'), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith('torchgeo-stars align: error: ')
    assert re.search(expected, err), err


def test_existing_output_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / 'aligned'
    (output / 'optical').mkdir(parents=True)
    (output / 'optical' / 'mine.tif').write_bytes(b'x')
    assert main([*ARGS, '--output', str(output)]) == 1
    err = capsys.readouterr().err
    assert f'{output / "optical"} already exists' in err
    assert '--overwrite' in err
    assert main([*ARGS, '--output', str(output), '--overwrite']) == 0


def test_no_input_or_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['align', '--output', 'x']) == 2
    assert 'give at least one of --optical' in capsys.readouterr().err
    assert main(['align', '--optical', 'a.tif']) == 2  # no --output


def test_ctrl_c_exits_130_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(align_module, '_to_cog', interrupted)
    output = tmp_path / 'aligned'
    assert main([*ARGS, '--output', str(output)]) == 130
    assert 'interrupted' in capsys.readouterr().err
    assert not list(output.rglob('*.tif'))
    assert [p.name for p in output.iterdir()] == ['manifest.json']
