"""The demo (``make demo``) in its quick mode: quiet, and ends with pictures."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

DEMO = Path(__file__).resolve().parents[1] / 'examples' / 'demo.py'

#: Lines a new user should not see: third-party tips, deprecation warnings,
#: unsafe-loading notes and Python warnings in general.
NOISE = re.compile(
    r'Tip:|litlogger|litmodels|deprecat|weights_only|Warning:|warnings\.warn',
    re.IGNORECASE,
)


@pytest.mark.slow
def test_quick_demo_is_quiet_and_ends_with_what_to_open(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    result = subprocess.run(
        [sys.executable, str(DEMO), str(tmp_path / 'out'), '--quick'],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    noise = [line for line in output.splitlines() if NOISE.search(line)]
    assert noise == []

    out = tmp_path / 'out'
    figure = out / 'scenarios.png'
    geotiff = out / 'prediction_sar_dsm.tif'
    model = out / 'stars.safetensors'
    checkpoint = out / 'stars.ckpt'
    for path in (figure, geotiff, model, checkpoint):
        assert path.is_file(), path
    assert figure.parent == geotiff.parent
    with Image.open(figure) as image:
        assert image.format == 'PNG'
        width, height = image.size
        assert width > 400
        assert height > 300
    assert 'optical, label, 7 scenario maps, mIoU bars' in result.stdout
    # The model file to share holds the network's weights and a small header,
    # none of the optimizer state (twice the weights with AdamW).
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']
    weight_bytes = sum(
        t.numel() * t.element_size() for k, t in state.items() if k.startswith('model.')
    )
    assert weight_bytes <= model.stat().st_size < weight_bytes + 256 * 1024
    assert model.stat().st_size < checkpoint.stat().st_size / 2.9

    # The last lines say which files to open and how to start TensorBoard.
    tail = result.stdout.strip().splitlines()[-6:]
    assert tail[0].startswith('done in ')
    assert tail[0].endswith('Open:')
    opened = [line.split()[0] for line in tail[1:4]]
    assert opened == [
        'out/scenarios.png',
        'out/prediction_sar_dsm.tif',
        'out/stars.safetensors',
    ]
    assert re.fullmatch(r'\s+\S*tensorboard --logdir out/runs', tail[-1])
    assert list((out / 'runs').rglob('events.out.tfevents.*'))
