"""Datamodules of the benchmarks the STARS paper and its peers report."""

from typing import Any, Literal

from ..datasets import WHUOPTSAR, EarthMiss, Potsdam, Vaihingen
from .benchmark import BenchmarkDataModule


class PotsdamDataModule(BenchmarkDataModule):
    """ISPRS Potsdam (orthophotos + DSM, optionally the nDSM) with its official tiles.

    ``modalities=['optical', 'dsm', 'ndsm']`` (or ``['optical', 'ndsm']``)
    adds the normalised DSM; the default is optical + DSM. See
    :class:`~torchgeo_stars.datasets.Potsdam` for the layout and
    :class:`BenchmarkDataModule` for the splits, sampling, statistics and
    augmentation.

    .. versionadded:: 0.1
    """

    dataset_type = Potsdam

    def __init__(
        self,
        root: str = 'data',
        labels: Literal['full', 'no_boundary'] = 'full',
        **kwargs: Any,
    ) -> None:
        """Initialise the datamodule.

        Args:
            root: Folder the release is unpacked in.
            labels: ``'full'`` labels, or ``'no_boundary'`` (eroded boundaries
                ignored; the official evaluation labels).
            **kwargs: Arguments of :class:`BenchmarkDataModule`.
        """
        super().__init__(root, labels=labels, **kwargs)


class VaihingenDataModule(BenchmarkDataModule):
    """ISPRS Vaihingen (IR-R-G orthophotos + DSM) with its official areas.

    See :class:`~torchgeo_stars.datasets.Vaihingen` and
    :class:`BenchmarkDataModule`.

    .. versionadded:: 0.1
    """

    dataset_type = Vaihingen


class WHUOPTSARDataModule(BenchmarkDataModule):
    """WHU-OPT-SAR (GF-1 optical + GF-3 SAR) with the authors' split.

    See :class:`~torchgeo_stars.datasets.WHUOPTSAR` and
    :class:`BenchmarkDataModule`.

    .. versionadded:: 0.1
    """

    dataset_type = WHUOPTSAR


class EarthMissDataModule(BenchmarkDataModule):
    """EarthMiss (RGB + SAR, 13 cities) with the authors' split by city.

    See :class:`~torchgeo_stars.datasets.EarthMiss` and
    :class:`BenchmarkDataModule`.

    .. versionadded:: 0.1
    """

    dataset_type = EarthMiss
