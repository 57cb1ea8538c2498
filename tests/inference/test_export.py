"""torchgeo-stars export: the inference model file and its round trip."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.inference import load_predictor
from torchgeo_stars.inference.export import export_model
from torchgeo_stars.inference.model_file import (
    METADATA_KEY,
    is_model_file,
    read_model_metadata,
)
from torchgeo_stars.main import main

from ..tasks.helpers import SCENE
from .helpers import predict_args, read
from .test_checkpoint import train_checkpoint


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny STARS checkpoint (optimizer state included)."""
    return train_checkpoint(tmp_path_factory.mktemp('checkpoint'))


def predict(model: Path, output: Path) -> np.typing.NDArray[np.uint8]:
    """The class map predict-geotiff writes from SAR + DSM with *model*."""
    sources = ('--sar', str(SCENE / 'sar'), '--dsm', str(SCENE / 'dsm'))
    extra = ('--probabilities', 'float32', *sources)
    status = main(['predict-geotiff', *predict_args(model, output, *extra)])
    assert status == 0
    return read(output)


def test_round_trip_gives_the_same_predictions(
    checkpoint: Path, tmp_path: Path
) -> None:
    exported = tmp_path / 'model.safetensors'
    assert main(['export', str(checkpoint), str(exported)]) == 0
    assert is_model_file(exported)
    assert not is_model_file(checkpoint)
    from_checkpoint = predict(checkpoint, tmp_path / 'a.tif')
    from_export = predict(exported, tmp_path / 'b.tif')
    np.testing.assert_array_equal(from_checkpoint, from_export)
    np.testing.assert_array_equal(
        read(tmp_path / 'a_probabilities.tif'), read(tmp_path / 'b_probabilities.tif')
    )
    assert (from_export != 255).any()


def test_model_file_holds_weights_and_metadata_only(
    checkpoint: Path, tmp_path: Path
) -> None:
    exported = export_model(checkpoint, tmp_path / 'model.safetensors')
    reference = load_predictor(checkpoint)
    weights = reference.model.state_dict()
    weight_bytes = sum(t.numel() * t.element_size() for t in weights.values())
    with safe_open(str(exported), framework='pt') as file:
        assert set(file.keys()) <= set(weights)
        document = json.loads((file.metadata() or {})[METADATA_KEY])
    # No optimizer state: the file is the weights plus a small header.
    size = exported.stat().st_size
    assert weight_bytes <= size < weight_bytes + 256 * 1024
    assert size < checkpoint.stat().st_size / 2
    assert document['modalities'] == {'optical': 4, 'sar': 2, 'dsm': 1}
    assert document['class_names'] == [f'class{k}' for k in range(6)]
    assert len(document['class_colors']) == 6
    assert document['statistics']['sar']['mean'] == [-12.0, -19.0]
    assert document['reader_options'] == {'sar': {'to_db': True}}
    assert 'weights' not in document['hyper_parameters']

    restored = load_predictor(exported)
    assert restored.modalities == reference.modalities
    assert restored.class_names == reference.class_names
    assert list(restored.colors or []) == list(reference.colors or [])
    assert restored.reader_options == reference.reader_options
    assert restored.statistics is not None
    assert reference.statistics is not None
    assert list(restored.statistics['sar'].std) == list(reference.statistics['sar'].std)
    assert not restored.model.training
    for name, tensor in restored.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


def test_float16_export_is_half_the_size(checkpoint: Path, tmp_path: Path) -> None:
    full = export_model(checkpoint, tmp_path / 'full.safetensors')
    half = export_model(checkpoint, tmp_path / 'half.safetensors', dtype='float16')
    assert half.stat().st_size < 0.55 * full.stat().st_size
    predictor = load_predictor(half)
    reference = load_predictor(full).model.state_dict()
    for name, tensor in predictor.model.state_dict().items():
        # Read back into the float32 network, within float16's precision.
        assert tensor.dtype == reference[name].dtype
        torch.testing.assert_close(tensor, reference[name], rtol=1e-3, atol=1e-4)


def test_export_refuses_bad_outputs(checkpoint: Path, tmp_path: Path) -> None:
    before = checkpoint.read_bytes()
    for extra in ([], ['--overwrite']):
        with pytest.raises(ConfigurationError, match='also an input'):
            export_model(checkpoint, checkpoint, overwrite=bool(extra))
    assert checkpoint.read_bytes() == before
    existing = tmp_path / 'existing.safetensors'
    existing.write_text('keep me')
    assert main(['export', str(checkpoint), str(existing)]) == 1
    assert existing.read_text() == 'keep me'
    assert main(['export', str(checkpoint), str(tmp_path / 'no' / 'm.st')]) == 1
    assert main(['export', str(tmp_path / 'none.ckpt'), str(tmp_path / 'm')]) == 1
    assert not (tmp_path / 'm').exists()


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / 'foreign.safetensors'
    save_file({'weight': torch.zeros(2)}, str(foreign), metadata={'x': '1'})
    with pytest.raises(ConfigurationError, match='not a torchgeo-stars model'):
        load_predictor(foreign)


def test_cli_reports_export_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pickled = tmp_path / 'pickled.ckpt'
    torch.save({'state_dict': {}, 'hyper_parameters': {'x': object()}}, pickled)
    assert main(['export', str(pickled), str(tmp_path / 'm.safetensors')]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert 'refused' in error
    assert str(pickled) in error


def test_lightning_cli_entries_of_the_hyper_parameters_are_left_out(
    checkpoint: Path, tmp_path: Path
) -> None:
    # LightningCLI saves its own entries with the task's hyper-parameters.
    content = torch.load(checkpoint, map_location='cpu', weights_only=True)
    content['hyper_parameters']['_class_path'] = 'torchgeo_stars.STARSSegmentationTask'
    content['hyper_parameters']['_instantiator'] = 'lightning.pytorch.cli.instantiate'
    from_cli = tmp_path / 'cli.ckpt'
    torch.save(content, from_cli)
    assert load_predictor(from_cli).class_names == [f'class{k}' for k in range(6)]
    exported = export_model(from_cli, tmp_path / 'model.safetensors')
    saved = read_model_metadata(exported)['hyper_parameters']
    assert not [key for key in saved if key.startswith('_')]
    assert saved['num_classes'] == 6
