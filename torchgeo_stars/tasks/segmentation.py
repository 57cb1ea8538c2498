"""STARSSegmentationTask: training and missing-modality evaluation in Lightning."""

from typing import Any, Literal

import matplotlib.pyplot as plt
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor
from torchgeo.tasks import BaseTask

from ..datasets.keys import MASK, SHARED_KEYS
from ..models import SegmentationOutput, modality_dropout
from ..models.pretrained import (
    InChannelsMode,
    InputExpectation,
    ModalityWeights,
    check_data_against_weights,
)
from . import class_weights as counted
from .checkpoint import DataMetadataHooks
from .checks import (
    batch_inputs,
    batch_labels,
    check_datamodule_modalities,
    check_labels,
    check_task_arguments,
)
from .metrics import SegmentationScores, write_lines
from .network import build_network
from .objective import LossTerms, build_losses, compose_losses
from .optimization import Schedule, check_optimization_arguments, configure_optimization
from .plotting import default_colors, plot_first_sample
from .scenarios import ScenarioMetrics


class STARSSegmentationTask(DataMetadataHooks, BaseTask):
    """Missing-modality multimodal semantic segmentation (STARS and baselines).

    Trains :class:`~torchgeo_stars.models.STARS` (or a baseline, chosen by
    *model*) on samples with one ``image_<modality>`` key per modality, a
    ``mask`` and an ``available`` flag per modality, as produced by
    :mod:`torchgeo_stars.datasets`. The loss is

    ``L = L_seg + lambda_tr * L_tr + lambda_psa * L_psa``

    (segmentation, asymmetric translation alignment, pixel-level semantic
    sampling alignment), with modality dropout during training.

    Validation and test evaluate every missing-modality scenario (every
    non-empty subset of the modalities) on the same batches and log each
    scenario's scores (:class:`~torchgeo_stars.tasks.ScenarioMetrics`). The
    monitored metric, ``val_mIoU``, is the mean of the scenarios' mIoU, so
    checkpoints favour models that are good whichever modality is missing.
    The checkpoint also keeps the training data's normalisation statistics
    (:class:`~torchgeo_stars.tasks.checkpoint.DataMetadataHooks`).

    Baselines (same data, same metrics): ``model='early_fusion'`` with
    ``p_drop=0`` is channel concatenation with zero-filled missing modalities,
    with ``p_drop>0`` it is ModDrop; ``model='shaspec'`` is ShaSpec-style
    shared-specific fusion. The STARS ablations are ``stop_gradient=False``,
    ``psa_sampling='random'``, ``lambda_psa=0`` and ``translation=False``.

    .. versionadded:: 0.1
    """

    monitor = 'val_mIoU'
    mode = 'max'

    def __init__(
        self,
        modalities: dict[str, int],
        num_classes: int,
        model: Literal['stars', 'early_fusion', 'shaspec'] = 'stars',
        backbone: str = 'resnet18',
        weights: ModalityWeights = None,
        weights_bands: dict[str, list[str]] | None = None,
        weights_in_channels: InChannelsMode = 'match',
        shared_encoder: str = 'light',
        translation: bool = True,
        class_names: list[str] | None = None,
        class_colors: list[tuple[int, int, int]] | None = None,
        ignore_index: int | None = None,
        class_weights: list[float] | str | None = 'median_frequency_sqrt',
        class_weight_batches: int = 50,
        dice_weight: float = 0.0,
        lambda_tr: float = 1.0,
        lambda_psa: float = 0.1,
        n_per_class: int = 64,
        temperature: float = 0.1,
        psa_sampling: Literal['balanced', 'random'] = 'balanced',
        psa_positions: Literal['grid', 'full'] = 'grid',
        psa_memory: int = 0,
        stop_gradient: bool = True,
        p_drop: float = 0.3,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        lr_schedule: Schedule = 'plateau',
        poly_power: float = 0.9,
        patience: int = 10,
        model_kwargs: dict[str, Any] | None = None,
        plot_every_n_epochs: int = 1,
    ) -> None:
        """Initialise a new STARSSegmentationTask.

        Args:
            modalities: Modality name to its band count, in the order of the
                data's ``available`` flags (``{'optical': 4, 'sar': 2, ...}``).
            num_classes: Number of classes (labels are ``0..num_classes-1``,
                besides *ignore_index*).
            model: ``'stars'``, or a baseline: ``'early_fusion'``, ``'shaspec'``.
            backbone: Encoder name from segmentation-models-pytorch (``tu-``
                prefixes select timm encoders).
            weights: Pretrained weights of the specific encoders, one value or
                one per modality, as TorchGeo's tasks take them (see
                :mod:`torchgeo_stars.models.pretrained`); not saved in the
                checkpoint, which holds the trained weights.
            weights_bands: Modality name to its band names in input order, to
                keep the matching input channels of the weights.
            weights_in_channels: ``'adapt'`` to adapt the first convolution
                when bands cannot be matched by name, ``'match'`` to refuse.
            shared_encoder: How STARS computes shared features (``'light'``,
                an encoder name, ``'backbone'`` or ``'projection'``: see
                :class:`~torchgeo_stars.models.STARS`). The ShaSpec baseline
                keeps its own shared backbone unless ``model_kwargs`` says
                otherwise.
            translation: Whether STARS recovers missing modalities by
                translation (False: zero-filled, the no-translation ablation).
            class_names: Class names for logs, plots and GeoTIFF metadata;
                defaults to ``class_0 ... class_{K-1}``.
            class_colors: RGB colours (0..255) per class for plots and GeoTIFF
                colour tables; defaults to matplotlib's tab20.
            ignore_index: Label value that is not a class and is ignored.
            class_weights: Cross-entropy weight per class, None, or
                ``'median_frequency'`` / ``'median_frequency_sqrt'`` (default),
                counted from the training labels
                (:mod:`~torchgeo_stars.tasks.class_weights`).
            class_weight_batches: Training batches counted for those names.
            dice_weight: Weight of an added Dice term (0 disables it).
            lambda_tr: Weight of the translation alignment loss.
            lambda_psa: Weight of the PSA loss.
            n_per_class: Pixels sampled per class for PSA.
            temperature: PSA contrastive temperature.
            psa_sampling: ``'balanced'`` (class-balanced) or ``'random'`` (the
                ablation) pixel sampling for PSA.
            psa_positions: Where PSA draws its pixels, ``'grid'`` or ``'full'``
                (see :class:`~torchgeo_stars.losses.PSALoss`).
            psa_memory: Embeddings PSA keeps per modality and class from
                earlier steps as extra positives and negatives (0: none).
            stop_gradient: Stop the gradient on the translation target (False
                is the ablation that lets features collapse).
            p_drop: Modality dropout probability during training.
            lr: Learning rate of AdamW.
            weight_decay: AdamW's decoupled weight decay.
            lr_schedule: ``'plateau'`` or ``'poly'`` (per-step decay to 0: see
                :mod:`~torchgeo_stars.tasks.optimization`).
            poly_power: Exponent of the poly schedule.
            patience: Epochs without improvement of the monitored metric
                before the plateau schedule reduces the learning rate.
            model_kwargs: Further keyword arguments of the model class.
            plot_every_n_epochs: Log a figure of the first validation sample
                every this many epochs (0 disables figures).

        Raises:
            ConfigurationError: If the arguments are inconsistent.
        """
        check_task_arguments(modalities, num_classes, class_names, class_colors, p_drop)
        counted.check_class_weights(class_weights, num_classes, class_weight_batches)
        check_optimization_arguments(lr, weight_decay, lr_schedule, poly_power)
        self.weights = weights
        self.pretrained_inputs: dict[str, InputExpectation] = {}
        super().__init__()

    @property
    def modality_names(self) -> list[str]:
        """Modality names in the model's order."""
        return list(self.hparams['modalities'])

    @property
    def scenario_scores(self) -> dict[str, dict[str, SegmentationScores]]:
        """Stage to the last computed scores, per scenario name."""
        return self.scenario_metrics.scores

    @property
    def class_names(self) -> list[str]:
        """Class names (given, or ``class_0`` ...)."""
        names = self.hparams['class_names']
        if names is None:
            return [f'class_{k}' for k in range(self.hparams['num_classes'])]
        return list(names)

    @property
    def class_colors(self) -> list[tuple[int, int, int]]:
        """RGB colour per class (given, or matplotlib's tab20)."""
        colors = self.hparams['class_colors']
        if colors is None:
            return default_colors(self.hparams['num_classes'])
        return [(int(r), int(g), int(b)) for r, g, b in colors]

    def configure_models(self) -> None:
        """Build the network chosen by ``model``, with its pretrained weights."""
        self.model, self.pretrained_inputs = build_network(self.hparams, self.weights)

    def configure_losses(self) -> None:
        """Build the segmentation, translation and PSA losses."""
        losses = build_losses(self.hparams)
        self.segmentation_loss, self.translation_loss, self.psa_loss = losses

    def configure_metrics(self) -> None:
        """One confusion matrix per (stage, scenario)."""
        self.scenario_metrics = ScenarioMetrics(
            self.modality_names,
            self.hparams['num_classes'],
            self.hparams['ignore_index'],
        )

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW with the plateau or poly learning-rate schedule.

        Returns:
            Optimizer and learning-rate scheduler.
        """
        hp = self.hparams
        poly = hp['lr_schedule'] == 'poly'
        return configure_optimization(
            self.parameters(),
            lr=hp['lr'],
            weight_decay=hp['weight_decay'],
            schedule=hp['lr_schedule'],
            monitor=self.monitor,
            patience=hp['patience'],
            total_steps=int(self.trainer.estimated_stepping_batches) if poly else 0,
            poly_power=hp['poly_power'],
        )

    def on_train_start(self) -> None:
        """Count the training labels for a named ``class_weights`` (once)."""
        loss, trainer = self.segmentation_loss, self.trainer
        counted.install_counted_weights(loss, self.hparams, trainer)

    def _target(self, batch: dict[str, Any]) -> Tensor:
        """The batch's ``(B, H, W)`` labels, their values checked if on the host."""
        labels, hparams = batch_labels(batch), self.hparams
        if labels.device.type == 'cpu':  # else on_before_batch_transfer did
            check_labels(labels, hparams['num_classes'], hparams['ignore_index'])
        return labels

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Check the labels on the host: on a device every step would wait for it."""
        if self.device.type != 'cpu' and isinstance(batch, dict) and MASK in batch:
            self._target(batch)
        return batch

    def compute_losses(self, output: SegmentationOutput, target: Tensor) -> LossTerms:
        """The training loss of a model output and its terms (:func:`compose_losses`).

        Args:
            output: The model's output.
            target: ``(B, H, W)`` labels.

        Returns:
            The total and its terms.
        """
        hp = self.hparams
        losses = self.segmentation_loss, self.translation_loss, self.psa_loss
        return compose_losses(
            output, target, *losses, hp['lambda_tr'], hp['lambda_psa']
        )

    def training_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        """Compute the total loss on a training batch with modality dropout.

        Args:
            batch: The output of the DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.

        Returns:
            The total loss.
        """
        inputs, available = batch_inputs(batch, self.hparams['modalities'])
        target = self._target(batch)
        dropped = modality_dropout(available, self.hparams['p_drop'])
        alignment = self.hparams['lambda_tr'] > 0 or self.hparams['lambda_psa'] > 0
        output: SegmentationOutput = self.model(
            inputs, available, dropped=dropped, return_alignment=alignment
        )
        losses = self.compute_losses(output, target)
        batch_size = target.shape[0]
        terms = {'seg': losses.segmentation, 'tr': losses.translation}
        for name, term in {**terms, 'psa': losses.psa}.items():
            if term is not None:
                self.log(f'train_loss_{name}', term, batch_size=batch_size)
        self.log('train_loss', losses.total, batch_size=batch_size, prog_bar=True)
        return losses.total

    def _evaluate(self, stage: str, batch: Any, batch_idx: int) -> None:
        """Add one batch to every scenario's scores (and log its figure)."""
        inputs, available = batch_inputs(batch, self.hparams['modalities'])
        predictions = self.scenario_metrics.evaluate(
            stage, self.model, inputs, available, self._target(batch)
        )
        if stage == 'val' and batch_idx == 0:
            self._log_figure(batch, available, predictions)

    def validation_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Evaluate a validation batch under every missing-modality scenario.

        Args:
            batch: The output of the DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._evaluate('val', batch, batch_idx)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Evaluate a test batch under every missing-modality scenario.

        Args:
            batch: The output of the DataLoader.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.
        """
        self._evaluate('test', batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        """Log the validation scores of every scenario."""
        self.log_dict(self.scenario_metrics.compute('val', self.class_names))

    def on_test_epoch_end(self) -> None:
        """Log the test scores of every scenario and print them as a table."""
        self.log_dict(self.scenario_metrics.compute('test', self.class_names))
        if self.trainer.is_global_zero and 'test' in self.scenario_scores:
            title = 'Test scores per missing-modality scenario (%)'
            write_lines(f'{title}:\n{self.scenario_table("test")}\n')

    def scenario_table(self, stage: str = 'test') -> str:
        """The last computed scores of *stage* (``'val'``, ``'test'``), as a table."""
        return self.scenario_metrics.table(stage, self.class_names)

    def _log_figure(
        self, batch: dict[str, Any], available: Tensor, predictions: dict[str, Tensor]
    ) -> None:
        """Log a figure of the batch's first sample to TensorBoard, if in use."""
        every = self.hparams['plot_every_n_epochs']
        if not every or self.current_epoch % every or self.trainer.sanity_checking:
            return
        experiment = getattr(self.logger, 'experiment', None)
        if not hasattr(experiment, 'add_figure') or not self.trainer.is_global_zero:
            return
        names, colors = self.class_names, self.class_colors
        rgb = getattr(self.trainer.datamodule, 'quicklook_bands', None)  # type: ignore[attr-defined]
        figure = plot_first_sample(
            batch, available, predictions, self.modality_names, names, colors, rgb
        )
        experiment.add_figure('val/scenarios', figure, global_step=self.global_step)  # type: ignore[union-attr]
        plt.close(figure)

    def predict_step(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Predict class probabilities with whatever modalities the batch has.

        Args:
            batch: The output of the DataLoader; modalities without an
                ``image_<modality>`` key (or flagged unavailable) are missing.
            batch_idx: Integer displaying index of this batch.
            dataloader_idx: Index of the current dataloader.

        Returns:
            ``probabilities`` ``(B, K, H, W)``, plus the batch's ``bounds`` and
            ``transform`` when it has them.
        """
        inputs, available = batch_inputs(batch, self.hparams['modalities'])
        output: SegmentationOutput = self.model(inputs, available)
        result = {'probabilities': output.logits.softmax(dim=1)}
        for key in SHARED_KEYS:
            if key in batch:
                result[key] = batch[key]
        return result

    def setup(self, stage: str) -> None:
        """Check the model's modalities against the datamodule's, if it says.

        Args:
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``.

        Raises:
            ConfigurationError: If the datamodule declares other modalities,
                another order or other band counts than ``modalities``, or
                reads other bands than ``weights_bands``.
        """
        datamodule = getattr(self._trainer, 'datamodule', None)
        check_datamodule_modalities(dict(self.hparams['modalities']), datamodule)
        if stage == 'fit':
            check_data_against_weights(
                self.pretrained_inputs, datamodule, self.hparams['weights_bands']
            )
