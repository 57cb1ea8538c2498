"""Stand-in models and raster writers for the inference tests."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.transform import from_origin
from torch import Tensor, nn

from torchgeo_stars.models.outputs import SegmentationOutput

CRS_UTM = 'EPSG:32631'
#: Modalities and band counts of the stand-in checkpoint's pixel model.
PIXEL_MODALITIES = {'optical': 3, 'sar': 1}
ORIGIN = (500_000.0, 4_600_000.0)


def write_raster(
    path: Path,
    data: np.typing.NDArray[np.generic],
    transform: Affine | None = None,
    crs: str = CRS_UTM,
    nodata: float | None = None,
) -> Path:
    """Write a tiled, compressed GeoTIFF (C, H, W)."""
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    with rasterio.open(
        path,
        'w',
        driver='GTiff',
        width=width,
        height=height,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform or from_origin(*ORIGIN, 10, 10),
        nodata=nodata,
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress='deflate',
    ) as dst:
        dst.write(data)
    return path


def _stack(
    inputs: Mapping[str, Tensor],
    modalities: Mapping[str, int],
    available: Tensor | None,
) -> Tensor:
    """Concatenate the modalities, zeros for those absent from *inputs*.

    Also checks the contract: a modality given in *inputs* has some available
    sample, and an available sample's modality is in *inputs*.
    """
    assert available is not None
    reference = next(iter(inputs.values()))
    batch, _, height, width = reference.shape
    parts = []
    for column, (name, bands) in enumerate(modalities.items()):
        if name in inputs:
            assert bool(available[:, column].any())
            parts.append(inputs[name])
        else:
            assert not bool(available[:, column].any())
            parts.append(reference.new_zeros(batch, bands, height, width))
    return torch.cat(parts, dim=1)


class PixelModel(nn.Module):
    """A 1x1 convolution over the concatenated modalities: no spatial context."""

    def __init__(self, modalities: Mapping[str, int], num_classes: int) -> None:
        super().__init__()
        self.modalities = dict(modalities)
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(sum(modalities.values()), num_classes, 1)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.randn(self.conv.weight.shape, generator=generator)
            )
            assert self.conv.bias is not None
            self.conv.bias.copy_(torch.randn(num_classes, generator=generator))
        self.calls: list[Tensor] = []

    def forward(
        self, inputs: dict[str, Tensor], available: Tensor | None = None
    ) -> SegmentationOutput:
        x = _stack(inputs, self.modalities, available)
        assert available is not None
        self.calls.append(available.cpu().clone())
        return SegmentationOutput(logits=self.conv(x), available=available)


class ContextModel(nn.Module):
    """Zero-padded 3x3 convolutions: predictions change near window borders."""

    def __init__(self, modalities: Mapping[str, int], num_classes: int) -> None:
        super().__init__()
        self.modalities = dict(modalities)
        bands = sum(modalities.values())
        self.body = nn.Sequential(
            nn.Conv2d(bands, 8, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(8, num_classes, 3, padding=1),
        )
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for parameter in self.body.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))

    def forward(
        self, inputs: dict[str, Tensor], available: Tensor | None = None
    ) -> SegmentationOutput:
        x = _stack(inputs, self.modalities, available)
        assert available is not None
        return SegmentationOutput(logits=self.body(x), available=available)


def pixel_probabilities(
    model: PixelModel, data: Mapping[str, np.typing.NDArray[np.float32]]
) -> np.typing.NDArray[np.float32]:
    """The model's softmax on whole rasters, (K, H, W)."""
    x = torch.cat(
        [torch.from_numpy(data[name]).float()[None] for name in model.modalities], 1
    )
    with torch.no_grad():
        return torch.softmax(model.conv(x), 1)[0].numpy()


def read(path: Path, band: int | None = None) -> np.typing.NDArray[Any]:
    """Read a raster's bands (C, H, W) or one band (H, W)."""
    with rasterio.open(path) as src:
        data: np.typing.NDArray[Any] = (
            src.read(band) if band is not None else src.read()
        )
    return data


def predict_args(checkpoint: Path, output: Path, *extra: str) -> list[str]:
    """``predict-geotiff`` arguments of the tests: small patches and batches, CPU."""
    return [
        '--checkpoint',
        str(checkpoint),
        '--output',
        str(output),
        '--patch-size',
        '32',
        '--overlap',
        '8',
        '--batch-size',
        '2',
        '--device',
        'cpu',
        '--no-progress',
        *extra,
    ]
