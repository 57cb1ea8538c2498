"""What the task saves in a checkpoint besides the weights and hyper-parameters.

The normalisation statistics and raster reading options of the training
data, and the package version, so that a checkpoint alone is enough to
predict (:mod:`torchgeo_stars.inference`).
"""

from typing import Any

from lightning.pytorch import LightningModule

#: Key under which the task keeps its extra state in a checkpoint.
CHECKPOINT_KEY = 'torchgeo_stars'


def datamodule_metadata(
    datamodule: object,
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]] | None]:
    """The normalisation statistics and reader options a datamodule used.

    Args:
        datamodule: The trainer's datamodule (any object; those without the
            attributes give None).

    Returns:
        Modality name to its statistics as a dictionary, and modality name to
        its raster reading options; None for what the datamodule lacks.
    """
    statistics = getattr(datamodule, 'statistics', None)
    saved_statistics = (
        {
            name: stats.to_dict() if hasattr(stats, 'to_dict') else dict(stats)
            for name, stats in statistics.items()
        }
        if statistics
        else None
    )
    options = getattr(datamodule, 'reader_options', None)
    saved_options = (
        {name: dict(value) for name, value in options.items()}
        if isinstance(options, dict)
        else None
    )
    return saved_statistics, saved_options


class DataMetadataHooks(LightningModule):
    """Lightning hooks that keep the training data's metadata with the weights.

    Mixed into :class:`~torchgeo_stars.STARSSegmentationTask`: at the start of
    fitting it takes the datamodule's statistics and reader options, writes
    them (with the package version) under :data:`CHECKPOINT_KEY` and reads
    them back when a checkpoint is loaded.

    .. versionadded:: 0.1

    Attributes:
        data_statistics: Modality name to ``{'mean': [...], 'std': [...]}``,
            or None.
        reader_options: Modality name to its raster reading options, or None.
    """

    data_statistics: dict[str, Any] | None = None
    reader_options: dict[str, dict[str, Any]] | None = None

    def on_fit_start(self) -> None:
        """Take the datamodule's normalisation statistics, to save with the model."""
        statistics, options = datamodule_metadata(
            getattr(self.trainer, 'datamodule', None)
        )
        if statistics is not None:
            self.data_statistics = statistics
        if options is not None:
            self.reader_options = options

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the normalisation statistics, reader options and package version.

        Args:
            checkpoint: The checkpoint being written.
        """
        from .. import __version__

        checkpoint[CHECKPOINT_KEY] = {
            'version': __version__,
            'statistics': self.data_statistics,
            'reader_options': self.reader_options,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the normalisation statistics and reader options.

        Args:
            checkpoint: The checkpoint being read.
        """
        extra = checkpoint.get(CHECKPOINT_KEY) or {}
        self.data_statistics = extra.get('statistics')
        self.reader_options = extra.get('reader_options')
