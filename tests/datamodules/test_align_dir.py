"""MultimodalDataModule(align_dir=...): training from rasters aligned once."""

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets.keys import BOUNDS, MASK, image_key
from torchgeo_stars.errors import ConfigurationError

DATA = Path(__file__).resolve().parents[1] / 'data'
SCENE = DATA / 'synthetic' / 'scene'
SCENE_PATHS = {name: str(SCENE / name) for name in ('optical', 'sar', 'dsm')}
PATCH = 16


def datamodule(**kwargs: Any) -> MultimodalDataModule:
    return MultimodalDataModule(
        SCENE_PATHS,
        str(SCENE / 'mask'),
        ignore_index=255,
        batch_size=4,
        patch_size=PATCH,
        length=12,
        augment=False,
        **kwargs,
    )


@pytest.fixture(scope='module')
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[MultimodalDataModule, MultimodalDataModule]:
    plain = datamodule()
    plain.setup('fit')
    aligned = datamodule(
        statistics=plain.statistics, align_dir=str(tmp_path_factory.mktemp('aligned'))
    )
    aligned.setup('fit')
    return plain, aligned


def local_range(images: Tensor) -> Tensor:
    """Max - min of each pixel's 3 x 3 neighbourhood.

    The datasets warp each window with GDAL, whose bilinear kernel, when it
    downsamples (DSM: 5 m onto 10 m), is scaled by the ratio of the window's
    source and destination sizes, so a window and the whole grid smooth a
    little differently. Both are weighted means of the source pixels under
    the pixel, so they lie within the values of its neighbourhood.
    """
    flat = images.flatten(0, 1)[:, None]
    high = F.max_pool2d(flat, 3, stride=1, padding=1)
    low = -F.max_pool2d(-flat, 3, stride=1, padding=1)
    return (high - low).reshape(images.shape)


def batches(dm: MultimodalDataModule, split: str) -> list[dict[str, Tensor]]:
    return list(getattr(dm, f'{split}_dataloader')())


def test_reads_the_aligned_rasters(
    pair: tuple[MultimodalDataModule, MultimodalDataModule],
) -> None:
    plain, aligned = pair
    assert plain.aligned is None
    assert aligned.aligned is not None
    assert aligned.aligned.written == ('optical', 'sar', 'dsm', 'mask')
    assert aligned.dataset is not None
    for name, dataset in aligned.dataset.modality_datasets.items():
        files = {str(f) for f in dataset.index['filepath']}
        assert files == {str(aligned.aligned.paths[name])}
    assert aligned.stripes == plain.stripes


@pytest.mark.parametrize('split', ['train', 'val'])
def test_same_batches_as_without_align_dir(
    pair: tuple[MultimodalDataModule, MultimodalDataModule], split: str
) -> None:
    plain, aligned = pair
    expected, found = batches(plain, split), batches(aligned, split)
    assert len(expected) == len(found) > 0
    for want, got in zip(expected, found, strict=True):
        assert torch.equal(want[BOUNDS], got[BOUNDS])  # same windows
        # On the optical grid: optical copied, labels nearest both ways
        assert torch.equal(want[image_key('optical')], got[image_key('optical')])
        assert torch.equal(want[MASK], got[MASK])
        for name in ('sar', 'dsm'):
            plain_values, aligned_values = want[image_key(name)], got[image_key(name)]
            spread = local_range(plain_values)
            assert ((plain_values - aligned_values).abs() <= spread).all(), name
        # SAR (20 m onto 10 m, upsampled): the same bilinear weights both ways, up
        # to GDAL's approximate reprojection between the UTM zones
        assert torch.allclose(
            want[image_key('sar')], got[image_key('sar')], rtol=0, atol=1e-2
        )


def test_reused_on_the_next_setup(
    pair: tuple[MultimodalDataModule, MultimodalDataModule],
) -> None:
    plain, aligned = pair
    assert aligned.aligned is not None
    again = datamodule(
        statistics=plain.statistics, align_dir=str(aligned.aligned.output)
    )
    again.setup('validate')
    assert again.aligned is not None
    assert again.aligned.written == ()


def test_separate_files_not_supported(tmp_path: Path) -> None:
    dm = datamodule(
        align_dir=str(tmp_path / 'aligned'),
        layouts={
            'optical': {
                'separate_files': True,
                'filename_regex': r'S2_(?P<date>\d{8})_(?P<band>scene)\.tif',
            }
        },
    )
    with pytest.raises(ConfigurationError, match='align_dir: optical has one file'):
        dm.setup('fit')
