"""Per-modality normalisation statistics and the transform that applies them.

Each modality is normalised with its own per-band mean and standard deviation:

.. code-block:: python

   stats = {m: compute_statistics(ds, m) for m, ds in modality_datasets.items()}
   json.dump({m: s.to_dict() for m, s in stats.items()}, open('stats.json', 'w'))
   normalize = NormalizeModalities(stats)    # in a datamodule's aug
   batch = normalize(batch)                  # image_<m> -> (x - mean) / std
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
import torch
from torch import Tensor, nn
from torchgeo.datasets import GeoDataset
from torchgeo.datasets.utils import Sample

from ..errors import ConfigurationError, DataError
from .intersection import describe_dataset, nodata_of
from .keys import AVAILABLE, image_key, modality_of


@dataclass(frozen=True)
class ModalityStatistics:
    """Per-band mean and standard deviation of one modality.

    Serialisable to a plain dict (``{'mean': [...], 'std': [...], 'bands':
    [...]}``) and JSON, so LightningCLI configs can hold it.

    .. versionadded:: 0.1

    Attributes:
        mean: per-band mean (stored as a tuple).
        std: per-band standard deviation, > 0 (stored as a tuple).
        bands: band names, optional (for checking and documentation).
    """

    mean: Sequence[float]
    std: Sequence[float]
    bands: Sequence[str] | None = None

    def __post_init__(self) -> None:
        """Validate and normalise the fields to tuples of floats.

        Raises:
            ConfigurationError: if lengths differ, a value is not finite or a
                std is not positive.
        """
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        bands = tuple(str(b) for b in self.bands) if self.bands is not None else None
        if not mean or len(mean) != len(std):
            raise ConfigurationError(
                f'ModalityStatistics: mean ({len(mean)} values) and std '
                f'({len(std)} values) need one value per band.'
            )
        if bands is not None and len(bands) != len(mean):
            raise ConfigurationError(
                f'ModalityStatistics: {len(bands)} band names {list(bands)} for '
                f'{len(mean)} mean/std values.'
            )
        if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
            raise ConfigurationError(
                f'ModalityStatistics: mean {list(mean)} and std {list(std)} must be '
                'finite and std > 0; recompute them with compute_statistics().'
            )
        object.__setattr__(self, 'mean', mean)
        object.__setattr__(self, 'std', std)
        object.__setattr__(self, 'bands', bands)

    @property
    def num_bands(self) -> int:
        """Number of bands.

        Returns:
            ``len(self.mean)``.
        """
        return len(self.mean)

    def to_dict(self) -> dict[str, list[float] | list[str]]:
        """Plain-dict form (JSON / YAML friendly).

        Returns:
            ``{'mean': [...], 'std': [...]}`` plus ``'bands'`` when known.
        """
        out: dict[str, list[float] | list[str]] = {
            'mean': list(self.mean),
            'std': list(self.std),
        }
        if self.bands is not None:
            out['bands'] = list(self.bands)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'ModalityStatistics':
        """Build from the output of :meth:`to_dict`.

        Args:
            data: mapping with ``mean`` and ``std`` (and optionally ``bands``).

        Returns:
            The statistics.

        Raises:
            ConfigurationError: if keys are missing or unknown, or values are
                invalid.
        """
        unknown = set(data) - {'mean', 'std', 'bands'}
        if 'mean' not in data or 'std' not in data or unknown:
            raise ConfigurationError(
                "ModalityStatistics needs keys 'mean' and 'std' (and optionally "
                f"'bands'); got {sorted(data)}."
            )
        bands = data.get('bands')
        return cls(
            tuple(data['mean']),
            tuple(data['std']),
            tuple(bands) if bands is not None else None,
        )

    def to_json(self) -> str:
        """JSON form.

        Returns:
            :meth:`to_dict` as a JSON string.
        """
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> 'ModalityStatistics':
        """Build from :meth:`to_json` output.

        Args:
            text: JSON string.

        Returns:
            The statistics.
        """
        return cls.from_dict(json.loads(text))

    @classmethod
    def coerce(
        cls, value: 'ModalityStatistics | Mapping[str, Any]'
    ) -> 'ModalityStatistics':
        """Accept either statistics or their dict form.

        Args:
            value: a ModalityStatistics or a mapping for :meth:`from_dict`.

        Returns:
            The statistics.
        """
        if isinstance(value, ModalityStatistics):
            return value
        return cls.from_dict(value)


def coerce_statistics(
    statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]] | None,
) -> dict[str, ModalityStatistics]:
    """Turn a modality -> statistics mapping (objects or dicts) into objects.

    Args:
        statistics: mapping from modality name to statistics or their dict form.

    Returns:
        A dict of :class:`ModalityStatistics` (empty for None).
    """
    if statistics is None:
        return {}
    return {m: ModalityStatistics.coerce(s) for m, s in statistics.items()}


def _image_key(sample: Sample, modality: str) -> str:
    key = image_key(modality)
    if key in sample:
        return key
    if 'image' in sample:
        return 'image'
    raise ConfigurationError(
        f'compute_statistics: samples have no {key!r} (keys: {sorted(sample)}); '
        'pass the dataset of that modality.'
    )


def compute_statistics(
    dataset: GeoDataset,
    modality: str,
    num_samples: int = 32,
    patch_size: int = 256,
    seed: int = 0,
) -> ModalityStatistics:
    """Estimate a modality's per-band mean and std from random windows.

    Draws *num_samples* windows of *patch_size* x *patch_size* pixels (smaller
    when the data is smaller) uniformly over the dataset's files, reads them at
    the dataset's resolution and pools every valid pixel: nodata, NaN and the
    modality's own invalid values (see
    :class:`~torchgeo_stars.datasets.ModalityRaster`) are ignored. Given a paired
    dataset, the modality's own dataset is read, so pixels filled by pairing do
    not bias the result. The std is the population std of the pooled pixels; a
    constant band gets std 1 (normalisation then only centres it).

    Args:
        dataset: the modality's raster dataset, or a paired dataset.
        modality: modality name; samples are read from ``image_<modality>``
            (or ``image`` for a plain TorchGeo dataset).
        num_samples: number of windows.
        patch_size: window size in pixels.
        seed: seed of the window positions (same seed, same statistics).

    Returns:
        The statistics, with the dataset's band names when it has them.

    Raises:
        ConfigurationError: if *num_samples* or *patch_size* is not positive or
            the modality is not in the dataset.
        DataError: if no valid pixel is found.
    """
    if num_samples < 1 or patch_size < 1:
        raise ConfigurationError(
            f'compute_statistics: num_samples ({num_samples}) and patch_size '
            f'({patch_size}) must be positive.'
        )
    members = getattr(dataset, 'modality_datasets', None)
    if isinstance(members, Mapping):
        if modality not in members:
            raise ConfigurationError(
                f'compute_statistics: modality {modality!r} is not in the paired '
                f'dataset (modalities: {list(members)}).'
            )
        dataset = members[modality]
    nodata = nodata_of(dataset)

    rng = np.random.default_rng(seed)
    xres, yres = dataset.res
    index = dataset.index
    areas = np.array([max(g.area, 1e-12) for g in index.geometry])
    count = np.zeros(0)
    mean = np.zeros(0)
    m2 = np.zeros(0)
    for _ in range(num_samples):
        row = int(rng.choice(len(index), p=areas / areas.sum()))
        xmin, ymin, xmax, ymax = shapely.bounds(index.geometry.iloc[row])
        width = min(patch_size * xres, xmax - xmin)
        height = min(patch_size * yres, ymax - ymin)
        # Snap the window origin to the pixel grid of the file's bounds
        x0 = xmin + math.floor(rng.uniform() * (xmax - xmin - width) / xres) * xres
        y0 = ymin + math.floor(rng.uniform() * (ymax - ymin - height) / yres) * yres
        interval = index.index[row]
        query = (
            slice(x0, x0 + width, xres),
            slice(y0, y0 + height, yres),
            slice(interval.left, interval.right),
        )
        try:
            sample = dataset[query]
        except IndexError:
            continue
        image = sample[_image_key(sample, modality)].to(torch.float64)
        pixels = image.reshape(image.shape[-3], -1).numpy()
        valid = np.isfinite(pixels)
        if nodata is not None:
            valid &= pixels != nodata
        if count.size == 0:
            count, mean, m2 = (np.zeros(pixels.shape[0]) for _ in range(3))
        for band in range(pixels.shape[0]):
            values = pixels[band, valid[band]]
            if values.size == 0:
                continue
            # Chan et al. parallel update of the running mean / sum of squares
            n_b, mean_b = values.size, values.mean()
            m2_b = ((values - mean_b) ** 2).sum()
            total = count[band] + n_b
            delta = mean_b - mean[band]
            mean[band] += delta * n_b / total
            m2[band] += m2_b + delta**2 * count[band] * n_b / total
            count[band] = total
    if count.size == 0 or (count == 0).any():
        raise DataError(
            f'compute_statistics: no valid pixel of modality {modality!r} in '
            f'{num_samples} windows of {describe_dataset(dataset)}; check its '
            'nodata value, or raise num_samples / patch_size.'
        )
    std = np.sqrt(m2 / count)
    std[std <= 0] = 1.0
    bands = getattr(dataset, 'bands', None)
    names = tuple(bands) if bands and len(bands) == len(mean) else None
    return ModalityStatistics(tuple(mean.tolist()), tuple(std.tolist()), names)


class NormalizeModalities(nn.Module):
    """Normalise each ``image_<modality>`` with its own statistics.

    ``x -> (x - mean) / std`` per band, for unbatched (C, H, W) or batched
    (B, C, H, W) samples; every other key is left alone. Use it as (part of) a
    datamodule's ``aug``, e.g. in ``on_after_batch_transfer``. Statistics are
    buffers, so ``.to(device)`` moves them.

    If *modalities* is given and the sample has ``available`` (one entry per
    modality, in that order), unavailable modalities are set back to 0 after
    normalisation.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        statistics: Mapping[str, ModalityStatistics | Mapping[str, Any]],
        *,
        modalities: Sequence[str] | None = None,
        strict: bool = True,
    ) -> None:
        """Initialise the transform.

        Args:
            statistics: modality name -> statistics (or their dict form).
            modalities: order of the ``available`` entries; enables re-zeroing
                unavailable modalities.
            strict: if True, an ``image_<modality>`` without statistics is an
                error; if False it is left as it is.

        Raises:
            ConfigurationError: if *statistics* is empty.
        """
        super().__init__()
        stats = coerce_statistics(statistics)
        if not stats:
            raise ConfigurationError('NormalizeModalities: no statistics given.')
        self.modalities = tuple(modalities) if modalities is not None else None
        self.strict = strict
        self._names = tuple(stats)
        for name, s in stats.items():
            self.register_buffer(f'mean_{name}', torch.tensor(s.mean))
            self.register_buffer(f'std_{name}', torch.tensor(s.std))

    def has(self, modality: str) -> bool:
        """Whether the transform has statistics for a modality.

        Args:
            modality: Modality name.

        Returns:
            True when ``image_<modality>`` is normalised.
        """
        return modality in self._names

    def forward(self, sample: Sample) -> Sample:
        """Normalise the modality images of a sample or batch.

        Args:
            sample: dict with ``image_<modality>`` tensors (C, H, W) or
                (B, C, H, W).

        Returns:
            A new dict; modality images normalised, other keys unchanged.

        Raises:
            ConfigurationError: if a band count differs from the statistics, or
                (strict) a modality has no statistics.
        """
        out = dict(sample)
        for key, value in sample.items():
            name = modality_of(key)
            if name is None:
                continue
            if name not in self._names:
                if self.strict:
                    raise ConfigurationError(
                        f'NormalizeModalities: no statistics for modality {name!r} '
                        f'(have {list(self._names)}); add them, or pass strict=False.'
                    )
                continue
            mean: Tensor = getattr(self, f'mean_{name}')
            std: Tensor = getattr(self, f'std_{name}')
            channels = value.shape[-3]
            if channels != mean.numel():
                raise ConfigurationError(
                    f'NormalizeModalities: {key} has {channels} bands but its '
                    f'statistics have {mean.numel()}.'
                )
            shape = (channels, 1, 1)
            out[key] = (value - mean.view(shape).to(value)) / std.view(shape).to(value)
        if self.modalities is not None and AVAILABLE in sample:
            available = sample[AVAILABLE]
            for i, name in enumerate(self.modalities):
                key = image_key(name)
                if key not in out:
                    continue
                flag = available[..., i].to(out[key].dtype)
                out[key] = out[key] * flag.view(*flag.shape, 1, 1, 1)
        return out
