import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin

from torchgeo_stars.errors import ConfigurationError, DataError
from torchgeo_stars.inference import load_predictor, predict_geotiff

from .helpers import ORIGIN, PixelModel, write_raster

OPTICAL = {'optical': 3}
Optical = tuple[Path, np.typing.NDArray[np.float32]]


def _predict(inputs: dict[str, Any], output: Path, **kwargs: Any) -> Path:
    options: dict[str, Any] = {
        'modalities': OPTICAL,
        'class_names': ['a', 'b'],
        'patch_size': 32,
        'overlap': 8,
        'device': 'cpu',
        'progress': False,
    }
    options.update(kwargs)
    model = PixelModel(options['modalities'], len(options['class_names']))
    return predict_geotiff(model, inputs, output, **options)


def test_unknown_modality_is_refused(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    with pytest.raises(ConfigurationError, match=r"\['lidar'\].*\['optical'\]"):
        _predict({'optical': path, 'lidar': path}, tmp_path / 'o.tif')


def test_band_count_must_match_the_model(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    with pytest.raises(ConfigurationError, match=r'optical\.tif has 3 bands.*4'):
        _predict({'optical': path}, tmp_path / 'o.tif', modalities={'optical': 4})


def test_inputs_that_do_not_overlap_are_named(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    far = write_raster(
        tmp_path / 'far_sar.tif',
        np.ones((1, 20, 20), np.float32),
        from_origin(ORIGIN[0] + 50_000, ORIGIN[1], 10, 10),
    )
    with pytest.raises(
        DataError,
        match=r'do not overlap: sar \(.*far_sar\.tif\) with bounds \(550000, 4599800.*optical \(.*optical\.tif\) with bounds \(500000, 4599300',
    ):
        _predict(
            {'optical': path, 'sar': far},
            tmp_path / 'o.tif',
            modalities={'optical': 3, 'sar': 1},
        )
    with pytest.raises(DataError, match=r'do not overlap: optical.*requested bounds'):
        _predict({'optical': path}, tmp_path / 'o.tif', bounds=(0, 0, 10, 10))
    assert not (tmp_path / 'o.tif').exists()


@pytest.mark.parametrize('keep', [0.3, 0.9])
def test_truncated_geotiff_is_a_data_error(keep: float, tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(3, 128, 128)).astype(np.float32)
    path = write_raster(tmp_path / 'cut.tif', data)
    size = path.stat().st_size
    with path.open('r+b') as handle:
        handle.truncate(int(size * keep))
    with pytest.raises(DataError, match=r'cut\.tif'):
        _predict({'optical': path}, tmp_path / 'o.tif')
    assert not (tmp_path / 'o.tif').exists()


def test_missing_input_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r'optical input .*nope\.tif does not exist'):
        _predict({'optical': tmp_path / 'nope.tif'}, tmp_path / 'o.tif')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataError, match='holds no'):
        _predict({'optical': tmp_path / 'empty'}, tmp_path / 'o.tif')


def test_output_folder_must_exist(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    with pytest.raises(ConfigurationError, match='does not exist'):
        _predict({'optical': path}, tmp_path / 'missing' / 'o.tif')


@pytest.mark.skipif(
    not hasattr(os, 'geteuid') or os.geteuid() == 0, reason='root can write anywhere'
)
def test_output_folder_must_be_writable(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigurationError, match='not writable'):
            _predict({'optical': path}, locked / 'o.tif')
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(not Path('/proc/self').is_dir(), reason='needs /proc')
def test_output_folder_on_a_read_only_file_system(optical: Optical) -> None:
    path, _ = optical
    with pytest.raises(ConfigurationError, match='not writable'):
        _predict({'optical': path}, Path('/proc/prediction.tif'))


def test_existing_output_needs_overwrite(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical
    output = tmp_path / 'o.tif'
    output.write_bytes(b'keep me')
    with pytest.raises(ConfigurationError, match=r'already exists.*overwrite'):
        _predict({'optical': path}, output)
    assert output.read_bytes() == b'keep me'
    _predict({'optical': path}, output, overwrite=True)
    assert output.read_bytes()[:2] in (b'II', b'MM')


def test_failure_mid_run_leaves_no_file(optical: Optical, tmp_path: Path) -> None:
    path, _ = optical

    class Failing(PixelModel):
        def forward(
            self, inputs: dict[str, torch.Tensor], available: torch.Tensor | None = None
        ) -> Any:
            if len(self.calls) == 2:
                raise RuntimeError('boom')
            return super().forward(inputs, available)

    model = Failing(OPTICAL, 2)
    with pytest.raises(RuntimeError, match='boom'):
        predict_geotiff(
            model,
            {'optical': path},
            tmp_path / 'o.tif',
            modalities=OPTICAL,
            class_names=['a', 'b'],
            patch_size=16,
            overlap=0,
            batch_size=1,
            probabilities='uint8',
            progress=False,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ['optical.tif']


def test_not_a_stars_checkpoint(tmp_path: Path) -> None:
    garbage = tmp_path / 'garbage.ckpt'
    generator = np.random.default_rng(0)
    for _ in range(200):
        garbage.write_bytes(generator.bytes(2048))
        with pytest.raises(ConfigurationError, match='not a STARS checkpoint'):
            load_predictor(garbage)
    plain = tmp_path / 'plain.ckpt'
    torch.save({'weights': torch.zeros(2)}, plain)
    with pytest.raises(ConfigurationError, match=r'not a STARS checkpoint.*state_dict'):
        load_predictor(plain)
    pickled = tmp_path / 'pickled.ckpt'
    torch.save({'state_dict': {}, 'hyper_parameters': {'x': object()}}, pickled)
    with pytest.raises(
        ConfigurationError,
        match=r'pickled.ckpt is not a STARS checkpoint .it holds Python objects.*refused',
    ):
        load_predictor(pickled)
    with pytest.raises(FileNotFoundError):
        load_predictor(tmp_path / 'none.ckpt')


KILLED_RUN = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from torchgeo_stars.inference import predict_geotiff

    class Pixel(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, inputs, available=None):
            return self.conv(inputs['optical'])

    torch.set_num_threads(1)
    predict_geotiff(
        Pixel(), {'optical': sys.argv[1]}, sys.argv[2], modalities={'optical': 3},
        class_names=['a', 'b'], patch_size=32, overlap=8, batch_size=1,
        device='cpu', progress=False,
    )
    """
)


@pytest.mark.slow
def test_killed_run_leaves_nothing_at_the_output_path(tmp_path: Path) -> None:
    data = np.random.default_rng(0).normal(size=(3, 1024, 1024)).astype(np.float32)
    raster = write_raster(tmp_path / 'big.tif', data)
    output = tmp_path / 'out' / 'pred.tif'
    output.parent.mkdir()
    process = subprocess.Popen(
        [sys.executable, '-c', KILLED_RUN, str(raster), str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(output.parent.glob('.pred.tif.*.partial.tif')):
            assert process.poll() is None, (
                process.stderr.read() if process.stderr else ''
            )
            assert time.monotonic() < deadline, 'the run never started writing'
            time.sleep(0.05)
        time.sleep(0.5)
        assert process.poll() is None, 'the run finished before it could be killed'
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not output.exists()
