"""The task's per-modality pretrained weights: CLI YAML, checkpoints, data checks."""

import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import segmentation_models_pytorch.encoders as smp_encoders
import torch
import yaml
from lightning.pytorch.cli import LightningCLI
from torchgeo.tasks import BaseTask
from torchvision.models._api import WeightsEnum

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.main import main
from torchgeo_stars.models.pretrained import canonical_band

from ..models.helpers import random_encoder_state
from .helpers import CONFIG, MODALITIES, NUM_CLASSES, TINY_MODEL, scene_data_args

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / 'examples' / 'configs' / 'sentinel1_sentinel2.yaml'


S2_STATE = random_encoder_state(13, seed=1)


def refuse(*args: Any, **kwargs: Any) -> Any:
    """Stand-in for anything that would download."""
    raise AssertionError(f'a download was attempted: {args}')


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads fail; TorchGeo weights return :data:`S2_STATE`."""
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(smp_encoders, 'hf_hub_download', refuse)
    monkeypatch.setattr(
        WeightsEnum,
        'get_state_dict',
        lambda self, *a, **k: {key: v.clone() for key, v in S2_STATE.items()},
    )


@pytest.fixture
def sar_file(tmp_path: Path) -> Path:
    """A local 2-band state dict for the SAR encoder."""
    path = tmp_path / 'sar.pth'
    torch.save(random_encoder_state(2, seed=2), path)
    return path


def model_yaml(sar_file: Path) -> dict[str, Any]:
    """A model section with per-modality weights of every kind."""
    return {
        'class_path': 'STARSSegmentationTask',
        'init_args': {
            'modalities': dict(MODALITIES),
            'num_classes': NUM_CLASSES,
            'weights': {
                'optical': 'ResNet18_Weights.SENTINEL2_ALL_MOCO',
                'sar': str(sar_file),
                'dsm': None,
            },
            'weights_bands': {'optical': ['B02', 'B03', 'B04', 'B08']},
            'weights_in_channels': 'adapt',
            'model_kwargs': dict(TINY_MODEL),
            'plot_every_n_epochs': 0,
        },
    }


def parse(config: Path, root: Path) -> LightningCLI:
    """Parse and instantiate a config as ``torchgeo-stars`` does, without running."""
    from torchgeo_stars import datamodules, tasks  # noqa: F401  (registers short names)

    with patch.object(sys, 'argv', ['torchgeo-stars']):
        return LightningCLI(
            model_class=BaseTask,
            subclass_mode_model=True,
            run=False,
            args=[
                '--config',
                str(config),
                '--trainer.logger',
                'false',
                '--trainer.default_root_dir',
                str(root),
            ],
        )


@pytest.mark.usefixtures('no_download')
def test_yaml_round_trip_of_per_modality_weights(
    tmp_path: Path, sar_file: Path
) -> None:
    config = tmp_path / 'config.yaml'
    config.write_text(yaml.safe_dump({'model': model_yaml(sar_file)}))
    cli = parse(config, tmp_path)
    task = cli.model
    assert isinstance(task, STARSSegmentationTask)
    assert task.weights == {
        'optical': 'ResNet18_Weights.SENTINEL2_ALL_MOCO',
        'sar': str(sar_file),
        'dsm': None,
    }
    assert task.hparams['weights_bands'] == {'optical': ['B02', 'B03', 'B04', 'B08']}
    assert 'weights' not in task.hparams
    encoders: Any = task.model.specific_encoders.encoders
    optical = encoders['optical'].encoder.state_dict()
    assert torch.equal(
        optical['conv1.weight'], S2_STATE['conv1.weight'][:, [1, 2, 3, 7]]
    )
    sar = torch.load(sar_file, weights_only=True)
    assert torch.equal(
        encoders['sar'].encoder.state_dict()['conv1.weight'], sar['conv1.weight']
    )

    dumped = tmp_path / 'dumped.yaml'
    dumped.write_text(cli.parser.dump(cli.config, skip_none=False))
    again = parse(dumped, tmp_path)
    assert again.model.weights == task.weights
    assert again.model.hparams == task.hparams


@pytest.mark.usefixtures('no_download')
@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('true', True),
        ('imagenet', 'imagenet'),
        ('null', None),
        ('ResNet18_Weights.SENTINEL2_ALL_MOCO', 'ResNet18_Weights.SENTINEL2_ALL_MOCO'),
    ],
)
def test_yaml_single_values_keep_their_type(
    tmp_path: Path, text: str, expected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model is built with the parsed value: stop before loading anything.
    seen: list[Any] = []

    def record(self: STARSSegmentationTask) -> None:
        seen.append(self.weights)
        self.model = torch.nn.Identity()

    monkeypatch.setattr(STARSSegmentationTask, 'configure_models', record)
    section = model_yaml(tmp_path / 'unused.pth')
    section['init_args']['weights'] = yaml.safe_load(text)
    config = tmp_path / 'config.yaml'
    config.write_text(yaml.safe_dump({'model': section}))
    assert f'weights: {text}' in config.read_text()
    parse(config, tmp_path)
    assert seen == [expected]
    assert type(seen[0]) is type(expected)


def test_example_config_names_existing_weights_for_its_backbone() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    args = config['model']['init_args']
    backbone = args['backbone']
    layouts = config['data']['init_args']['layouts']
    for modality, name in args['weights'].items():
        if name is None:
            continue
        member = _member(name)
        assert member.meta['model'] == backbone, name
        bands = args['weights_bands'][modality]
        assert len(bands) == args['modalities'][modality]
        known = {canonical_band(b) for b in member.meta['bands']}
        assert {canonical_band(b) for b in bands} <= known, (modality, bands)
        layout = layouts.get(modality, {})
        data_bands = layout.get('bands') or layout.get('all_bands')
        if data_bands is not None:
            assert [canonical_band(b) for b in data_bands] == [
                canonical_band(b) for b in bands
            ]


def test_example_config_passes_the_cli_validation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --print_config validates every value against the signatures, without
    # building the model (nothing is downloaded).
    with pytest.raises(SystemExit) as exit_info:
        main(['fit', '--config', str(EXAMPLE), '--print_config'])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['model']['init_args']['weights'] == {
        'optical': 'ResNet50_Weights.SENTINEL2_ALL_MOCO',
        'sar': 'ResNet50_Weights.SENTINEL1_GRD_MOCO',
        'dsm': None,
    }


def _member(name: str) -> WeightsEnum:
    """The TorchGeo weights enum member named *name* (aliases included)."""
    import torchgeo.models

    class_name, _, member = name.partition('.')
    enum: Any = getattr(torchgeo.models, class_name)
    result: WeightsEnum = enum[member]
    return result


@pytest.mark.slow
@pytest.mark.usefixtures('no_download')
def test_fit_saves_no_weights_name_and_reloads_without_download(
    tmp_path: Path, sar_file: Path
) -> None:
    weights = (
        f'{{optical: ResNet18_Weights.SENTINEL2_ALL_MOCO, sar: {sar_file}, dsm: null}}'
    )
    with pytest.warns(UserWarning, match='SENTINEL2_ALL_MOCO expect inputs normalised'):
        status = main(
            [
                'fit',
                '--config',
                str(CONFIG),
                *scene_data_args(),
                '--model.init_args.weights',
                weights,
                '--model.init_args.weights_bands',
                '{sar: [VV, VH]}',
                '--model.init_args.weights_in_channels',
                'adapt',
                '--trainer.max_epochs',
                '1',
                '--trainer.limit_train_batches',
                '1',
                '--trainer.limit_val_batches',
                '1',
                '--trainer.num_sanity_val_steps',
                '0',
                '--trainer.enable_progress_bar',
                'false',
                '--trainer.default_root_dir',
                str(tmp_path),
            ]
        )
    assert status == 0
    (path,) = tmp_path.rglob('*.ckpt')
    checkpoint = torch.load(path, weights_only=True, map_location='cpu')
    hparams = checkpoint['hyper_parameters']
    assert 'weights' not in hparams
    assert not any(
        'SENTINEL2' in str(value) or str(sar_file) in str(value)
        for value in hparams.values()
    )
    sar_file.unlink()  # loading the checkpoint must not need the pretrained files
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WeightsEnum, 'get_state_dict', refuse)
        task = STARSSegmentationTask.load_from_checkpoint(path, map_location='cpu')
    for key, value in checkpoint['state_dict'].items():
        assert torch.equal(task.state_dict()[key], value), key


@pytest.mark.usefixtures('no_download')
def test_weights_bands_that_the_data_does_not_read_stop_fit(
    tmp_path: Path, sar_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            'fit',
            '--config',
            str(CONFIG),
            *scene_data_args(),
            '--model.init_args.weights',
            f'{{sar: {sar_file}}}',
            '--model.init_args.weights_bands',
            '{sar: [VH, VV]}',
            '--trainer.fast_dev_run',
            'true',
            '--trainer.default_root_dir',
            str(tmp_path),
        ]
    )
    assert status == 1
    error = capsys.readouterr().err.strip()
    assert error.count('\n') == 0
    assert (
        "weights_bands.sar is ['VH', 'VV'] but the data reads bands ['VV', 'VH']"
        in error
    )
