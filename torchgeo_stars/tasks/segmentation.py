"""STARSSegmentationTask: training and missing-modality evaluation in Lightning."""

import sys
from typing import Any, Literal

import lightning.pytorch.utilities.types
import matplotlib.pyplot as plt
import torch
from torch import Tensor
from torch.optim import AdamW
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchgeo.tasks import BaseTask
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix

from ..datasets.keys import AVAILABLE, MASK, SHARED_KEYS, image_key
from ..errors import ConfigurationError
from ..losses import PSALoss, SegmentationLoss, TranslationAlignmentLoss
from ..models import SegmentationOutput, build_model
from ..models.pretrained import (
    InChannelsMode,
    InputExpectation,
    ModalityWeights,
    check_data_against_weights,
    load_pretrained_encoders,
    smp_weights_name,
)
from ..models.shared_specific import SharedSpecificSegmenter
from .metrics import SegmentationScores, format_scenario_table, scores_from_confusion
from .plotting import default_colors, plot_scenarios
from .scenarios import modality_scenarios, scenario_availability, scenario_name

#: Key under which the task keeps its extra state in a checkpoint.
CHECKPOINT_KEY = 'torchgeo_stars'


def modality_dropout(
    available: Tensor, p_drop: float, generator: torch.Generator | None = None
) -> Tensor:
    """Choose modalities to drop, keeping at least one per sample.

    Each available modality of each sample is dropped with probability
    *p_drop*; a sample that would lose all of them keeps one, chosen uniformly
    among its available modalities.

    Args:
        available: Boolean ``(B, M)`` availability.
        p_drop: Probability of dropping each available modality.
        generator: Optional random generator, for reproducibility.

    Returns:
        Boolean ``(B, M)`` mask of dropped modalities, a subset of *available*.
    """
    if p_drop <= 0:
        return torch.zeros_like(available)
    draw = torch.rand(available.shape, generator=generator, device='cpu')
    dropped = (draw.to(available.device) < p_drop) & available
    lost_all = available.any(dim=1) & ~(available & ~dropped).any(dim=1)
    if lost_all.any():
        # Keep the available modality with the smallest draw: uniform among them.
        scores = torch.where(available, draw.to(available.device), torch.inf)
        keep = torch.nn.functional.one_hot(scores.argmin(dim=1), available.shape[1])
        dropped = torch.where(lost_all[:, None], dropped & ~keep.bool(), dropped)
    return dropped


class STARSSegmentationTask(BaseTask):
    """Missing-modality multimodal semantic segmentation (STARS and baselines).

    Trains :class:`~torchgeo_stars.models.STARS` (or a baseline, chosen by
    *model*) on samples with one ``image_<modality>`` key per modality, a
    ``mask`` and an ``available`` flag per modality, as produced by
    :mod:`torchgeo_stars.datasets`. The loss is

    ``L = L_seg + lambda_tr * L_tr + lambda_psa * L_psa``

    (segmentation, asymmetric translation alignment, pixel-level semantic
    sampling alignment), with modality dropout during training.

    Validation and test evaluate every missing-modality scenario (every
    non-empty subset of the modalities) on the same batches and log, per
    scenario ``S`` (modality names joined with ``+``), ``{stage}/{S}/OA``,
    ``/mIoU``, ``/mF1`` and per-class ``/IoU/{class}`` and ``/F1/{class}``.
    The monitored metric, ``val_mIoU``, is the mean of the scenarios' mIoU,
    so checkpoints favour models that are good whichever modality is missing;
    ``{stage}_mIoU_full`` is the mIoU with every modality present.

    Baselines (same data, same metrics): ``model='early_fusion'`` with
    ``p_drop=0`` is channel concatenation with zero-filled missing modalities,
    with ``p_drop>0`` it is ModDrop; ``model='shaspec'`` is ShaSpec-style
    shared/specific fusion. The STARS ablations are ``stop_gradient=False``,
    ``psa_sampling='random'``, ``lambda_psa=0`` and ``translation=False``.
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
        class_weights: list[float] | None = None,
        dice_weight: float = 0.0,
        lambda_tr: float = 1.0,
        lambda_psa: float = 0.1,
        n_per_class: int = 64,
        temperature: float = 0.1,
        psa_sampling: Literal['balanced', 'random'] = 'balanced',
        stop_gradient: bool = True,
        p_drop: float = 0.3,
        lr: float = 1e-3,
        patience: int = 10,
        model_kwargs: dict[str, Any] | None = None,
        plot_every_n_epochs: int = 1,
    ) -> None:
        """Initialise a new STARSSegmentationTask.

        Args:
            modalities: Modality name to its band count, in the order of the
                data's ``available`` flags (e.g. ``{'optical': 4, 'sar': 2,
                'dsm': 1}``).
            num_classes: Number of classes (labels are ``0..num_classes-1``,
                besides *ignore_index*).
            model: ``'stars'``, or a baseline: ``'early_fusion'``, ``'shaspec'``.
            backbone: Encoder name from segmentation-models-pytorch (``tu-``
                prefixes select timm encoders).
            weights: Pretrained weights of the specific encoders, as TorchGeo's
                tasks take them (a ``WeightsEnum`` such as
                ``ResNet18_Weights.SENTINEL2_ALL_MOCO``, its name, a state dict
                or checkpoint file, an smp name such as ``'imagenet'``, True
                for ImageNet, or None for random initialisation), one value
                for every modality or a mapping with one per modality
                (see :mod:`torchgeo_stars.models.pretrained`). Only a single
                smp name also initialises the shared encoder. Not saved in
                the checkpoint: the checkpoint holds the trained weights.
            weights_bands: Modality name to its band names in input order
                (e.g. ``{'optical': ['B2', 'B3', 'B4', 'B8']}``), to keep the
                matching input channels of weights trained on more bands;
                checked against the bands the datamodule reads.
            weights_in_channels: ``'adapt'`` to adapt the first convolution
                (timm's ``adapt_input_conv``) when a modality's bands cannot
                be matched to the weights' by name and their counts differ;
                ``'match'`` stops with an error instead.
            shared_encoder: How STARS computes shared features: ``'light'``
                (default: a small conv pyramid on the images whose stages all
                modalities share), the encoder name of a shared backbone
                (e.g. ``'tu-lcnet_050'``), ``'backbone'`` (a shared copy of
                *backbone*) or ``'projection'`` (shared projections of the
                specific features). The ShaSpec baseline keeps its own shared
                backbone unless ``model_kwargs`` says otherwise.
            translation: Whether STARS recovers missing modalities by
                translation (False: zero-filled, the no-translation ablation).
            class_names: Class names for logs, plots and GeoTIFF metadata;
                defaults to ``class_0 ... class_{K-1}``.
            class_colors: RGB colours (0..255) per class for plots and GeoTIFF
                colour tables; defaults to matplotlib's tab20.
            ignore_index: Label value that is not a class and is ignored.
            class_weights: Cross-entropy weight per class.
            dice_weight: Weight of an added Dice term (0 disables it).
            lambda_tr: Weight of the translation alignment loss.
            lambda_psa: Weight of the PSA loss.
            n_per_class: Pixels sampled per class for PSA.
            temperature: PSA contrastive temperature.
            psa_sampling: ``'balanced'`` (class-balanced) or ``'random'`` (the
                ablation) pixel sampling for PSA.
            stop_gradient: Stop the gradient on the translation target (False
                is the ablation that lets features collapse).
            p_drop: Modality dropout probability during training.
            lr: Learning rate of AdamW.
            patience: Epochs without improvement of the monitored metric
                before the learning rate is reduced.
            model_kwargs: Further keyword arguments of the model class.
            plot_every_n_epochs: Log a figure of the first validation sample
                every this many epochs (0 disables figures).

        Raises:
            ConfigurationError: If the arguments are inconsistent.
        """
        if not modalities:
            raise ConfigurationError('modalities: give at least one modality.')
        if any(bands < 1 for bands in modalities.values()):
            raise ConfigurationError(
                f'modalities: every band count must be positive, got {modalities}.'
            )
        if num_classes < 2:
            raise ConfigurationError(f'num_classes must be >= 2, got {num_classes}.')
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigurationError(
                f'class_names has {len(class_names)} names but num_classes is '
                f'{num_classes}.'
            )
        if class_colors is not None and len(class_colors) != num_classes:
            raise ConfigurationError(
                f'class_colors has {len(class_colors)} colours but num_classes is '
                f'{num_classes}.'
            )
        if class_weights is not None and len(class_weights) != num_classes:
            raise ConfigurationError(
                f'class_weights has {len(class_weights)} values but num_classes is '
                f'{num_classes}.'
            )
        if not 0 <= p_drop < 1:
            raise ConfigurationError(f'p_drop must be in [0, 1), got {p_drop}.')
        self.weights = weights
        self.pretrained_inputs: dict[str, InputExpectation] = {}
        self.scenario_scores: dict[str, dict[str, SegmentationScores]] = {}
        self.data_statistics: dict[str, Any] | None = None
        self.reader_options: dict[str, dict[str, Any]] | None = None
        super().__init__()

    @property
    def modality_names(self) -> list[str]:
        """Modality names in the model's order."""
        return list(self.hparams['modalities'])

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
        """Build the network chosen by ``model``."""
        hparams = self.hparams
        kwargs: dict[str, Any] = dict(hparams['model_kwargs'] or {})
        if hparams['model'] == 'stars':
            kwargs.setdefault('shared_encoder', hparams['shared_encoder'])
            kwargs.setdefault('translation', hparams['translation'])
        self.model = build_model(
            hparams['model'],
            modalities=dict(hparams['modalities']),
            num_classes=hparams['num_classes'],
            backbone=hparams['backbone'],
            weights=smp_weights_name(self.weights),
            **kwargs,
        )
        self.pretrained_inputs = load_pretrained_encoders(
            self.model,
            self.weights,
            hparams['backbone'],
            hparams['weights_bands'],
            hparams['weights_in_channels'],
        )

    def configure_losses(self) -> None:
        """Build the segmentation, translation and PSA losses."""
        hparams = self.hparams
        weights = hparams['class_weights']
        self.segmentation_loss = SegmentationLoss(
            ignore_index=hparams['ignore_index'],
            class_weights=torch.tensor(weights) if weights is not None else None,
            dice_weight=hparams['dice_weight'],
        )
        self.translation_loss = TranslationAlignmentLoss(
            stop_gradient=hparams['stop_gradient']
        )
        self.psa_loss = PSALoss(
            n_per_class=hparams['n_per_class'],
            temperature=hparams['temperature'],
            sampling=hparams['psa_sampling'],
            ignore_index=hparams['ignore_index'],
        )

    def configure_metrics(self) -> None:
        """One confusion matrix per (stage, scenario)."""
        hparams = self.hparams
        self.scenarios = modality_scenarios(self.modality_names)
        self.stage_metrics = torch.nn.ModuleDict()
        for stage in ('val', 'test'):
            self.stage_metrics[stage] = MetricCollection(
                {
                    scenario_name(subset): MulticlassConfusionMatrix(
                        num_classes=hparams['num_classes'],
                        ignore_index=hparams['ignore_index'],
                    )
                    for subset in self.scenarios
                },
                compute_groups=False,
            )

    def configure_optimizers(
        self,
    ) -> 'lightning.pytorch.utilities.types.OptimizerLRScheduler':
        """AdamW, with the learning rate reduced when ``val_mIoU`` stalls.

        Returns:
            Optimizer and learning-rate scheduler.
        """
        parameters = list(self.parameters())
        # The fused kernel (one pass over all tensors) exists for CPU and CUDA.
        fused = all(p.device.type in ('cpu', 'cuda') for p in parameters)
        optimizer = AdamW(parameters, lr=self.hparams['lr'], fused=fused)
        scheduler = ReduceLROnPlateau(
            optimizer, mode='max', patience=self.hparams['patience']
        )
        return {
            'optimizer': optimizer,
            'lr_scheduler': {
                'scheduler': scheduler,
                'monitor': self.monitor,
                'strict': False,
            },
        }

    # ------------------------------------------------------------------ inputs

    def _inputs(self, batch: dict[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
        """Check a batch against the configuration and split out the inputs.

        Args:
            batch: A collated sample dictionary.

        Returns:
            Modality inputs and their ``(B, M)`` availability.

        Raises:
            ConfigurationError: If a modality's band count differs from the
                configuration, no configured modality is in the batch, or a
                label is not a valid class.
        """
        inputs: dict[str, Tensor] = {}
        for name, bands in self.hparams['modalities'].items():
            key = image_key(name)
            if key not in batch:
                continue
            image = batch[key]
            if image.ndim != 4 or image.shape[1] != bands:
                raise ConfigurationError(
                    f"modality '{name}': the model expects {bands} band(s) but the "
                    f'data gives {tuple(image.shape[1:-2])} (tensor shape '
                    f'{tuple(image.shape)}); set modalities.{name} to the number of '
                    'bands of the data.'
                )
            inputs[name] = image
        if not inputs:
            present = sorted(key for key in batch if key.startswith('image'))
            raise ConfigurationError(
                f'none of the configured modalities {self.modality_names} is in the '
                f'data (its image keys are {present}); make the modalities of the '
                'model and the data agree.'
            )
        reference = next(iter(inputs.values()))
        batch_size = reference.shape[0]
        if AVAILABLE in batch:
            available = batch[AVAILABLE].to(torch.bool)
            if available.shape != (batch_size, len(self.modality_names)):
                raise ConfigurationError(
                    f"the data's 'available' flags have shape "
                    f'{tuple(available.shape)} but the model has '
                    f'{len(self.modality_names)} modalities {self.modality_names}; '
                    'make the modalities of the model and the data agree.'
                )
        else:
            available = torch.ones(
                batch_size,
                len(self.modality_names),
                dtype=torch.bool,
                device=reference.device,
            )
        in_batch = torch.tensor(
            [name in inputs for name in self.modality_names], device=available.device
        )
        return inputs, available & in_batch

    def _target(self, batch: dict[str, Any]) -> Tensor:
        """Return the batch's labels after checking them against ``num_classes``.

        Args:
            batch: A collated sample dictionary.

        Returns:
            ``(B, H, W)`` int64 labels.

        Raises:
            ConfigurationError: If there is no mask or a label is out of range.
        """
        if MASK not in batch:
            raise ConfigurationError(
                "the data has no 'mask': training and evaluation need labels; "
                'give the datamodule a mask path.'
            )
        mask: Tensor = batch[MASK].long()
        if mask.ndim == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        ignore = self.hparams['ignore_index']
        labels = mask if ignore is None else mask[mask != ignore]
        if labels.numel() and (
            labels.max() >= self.hparams['num_classes'] or labels.min() < 0
        ):
            raise ConfigurationError(
                f'the labels hold values from {int(labels.min())} to '
                f'{int(labels.max())} but num_classes is '
                f'{self.hparams["num_classes"]}; raise num_classes or set '
                'ignore_index for the value that marks unlabelled pixels.'
            )
        return mask

    # ---------------------------------------------------------------- training

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
        inputs, available = self._inputs(batch)
        target = self._target(batch)
        dropped = modality_dropout(available, self.hparams['p_drop'])
        alignment = self.hparams['lambda_tr'] > 0 or self.hparams['lambda_psa'] > 0
        output: SegmentationOutput = self.model(
            inputs, available, dropped=dropped, return_alignment=alignment
        )
        loss_seg = self.segmentation_loss(output.logits, target)
        loss = loss_seg
        batch_size = target.shape[0]
        self.log('train_loss_seg', loss_seg, batch_size=batch_size)
        if output.translated and self.hparams['lambda_tr'] > 0:
            loss_tr = self.translation_loss(
                output.translated, output.specific, output.available
            )
            loss = loss + self.hparams['lambda_tr'] * loss_tr
            self.log('train_loss_tr', loss_tr, batch_size=batch_size)
        if output.embeddings and self.hparams['lambda_psa'] > 0:
            loss_psa = self.psa_loss(output.embeddings, target, output.available)
            loss = loss + self.hparams['lambda_psa'] * loss_psa
            self.log('train_loss_psa', loss_psa, batch_size=batch_size)
        self.log('train_loss', loss, batch_size=batch_size, prog_bar=True)
        total: Tensor = loss
        return total

    # -------------------------------------------------------------- evaluation

    def _evaluate(self, stage: str, batch: Any, batch_idx: int) -> None:
        """Update every scenario's confusion matrix with one batch.

        Args:
            stage: ``'val'`` or ``'test'``.
            batch: The output of the DataLoader.
            batch_idx: Index of the batch in the epoch.
        """
        inputs, available = self._inputs(batch)
        target = self._target(batch)
        metrics: MetricCollection = self.stage_metrics[stage]  # type: ignore[assignment]
        predictions: dict[str, Tensor] = {}
        masks = [
            scenario_availability(available, self.modality_names, subset)
            for subset in self.scenarios
        ]
        logits_per_scenario = self._scenario_logits(inputs, available, masks)
        for subset, keep, logits in zip(
            self.scenarios, masks, logits_per_scenario, strict=True
        ):
            name = scenario_name(subset)
            rows = keep.any(dim=1)
            if not rows.any():
                continue
            predicted = logits.argmax(dim=1)
            metrics[name].update(predicted, target[rows])
            if bool(rows[0]):
                predictions[name] = predicted[0]
        if stage == 'val' and batch_idx == 0:
            self._log_figure(batch, available, predictions)

    def _scenario_logits(
        self, inputs: dict[str, Tensor], available: Tensor, masks: list[Tensor]
    ) -> list[Tensor]:
        """Logits of the rows each scenario mask keeps, in batch order.

        Shared-specific models encode the batch once for all scenarios
        (:meth:`~torchgeo_stars.models.STARS.forward_scenarios`); others run
        once per scenario on its rows and modalities.

        Args:
            inputs: Modality name to images.
            available: Boolean ``(B, M)`` availability.
            masks: Per scenario, the modalities it uses ``(B, M)``.

        Returns:
            Per scenario, logits of the rows with at least one modality.
        """
        if isinstance(self.model, SharedSpecificSegmenter):
            return self.model.forward_scenarios(inputs, available, masks)
        results = []
        for keep in masks:
            rows = keep.any(dim=1)
            columns = keep.any(dim=0).tolist()
            scenario_inputs = {
                name: inputs[name][rows]
                for name, used in zip(self.modality_names, columns, strict=True)
                if used and name in inputs
            }
            if not scenario_inputs:
                results.append(torch.empty(0))
                continue
            output: SegmentationOutput = self.model(scenario_inputs, keep[rows])
            results.append(output.logits)
        return results

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

    def _log_scores(self, stage: str) -> None:
        """Compute, log and reset every scenario's scores.

        Args:
            stage: ``'val'`` or ``'test'``.
        """
        metrics: MetricCollection = self.stage_metrics[stage]  # type: ignore[assignment]
        scores: dict[str, SegmentationScores] = {}
        values: dict[str, float] = {}
        for subset in self.scenarios:
            name = scenario_name(subset)
            metric = metrics[name]
            if not metric.update_called:
                continue
            score = scores_from_confusion(metric.compute())
            scores[name] = score
            values[f'{stage}/{name}/OA'] = score.overall_accuracy
            values[f'{stage}/{name}/mIoU'] = score.miou
            values[f'{stage}/{name}/mF1'] = score.mf1
            for class_name, iou, f1 in zip(
                self.class_names, score.iou, score.f1, strict=True
            ):
                values[f'{stage}/{name}/IoU/{class_name}'] = iou
                values[f'{stage}/{name}/F1/{class_name}'] = f1
        metrics.reset()
        if not scores:
            return
        mious = torch.tensor([score.miou for score in scores.values()])
        values[f'{stage}_mIoU'] = float(mious.nanmean())
        full = scenario_name(self.modality_names)
        if full in scores:
            values[f'{stage}_mIoU_full'] = scores[full].miou
        self.scenario_scores[stage] = scores
        self.log_dict(values, sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        """Log the validation scores of every scenario."""
        self._log_scores('val')

    def on_test_epoch_end(self) -> None:
        """Log the test scores of every scenario and print them as a table."""
        self._log_scores('test')
        if self.trainer.is_global_zero and 'test' in self.scenario_scores:
            # One write of whole lines: Lightning's rich progress bar proxies
            # stdout, and in Jupyter a partial line in its buffer recurses
            # without end (rich issue #3390); print() writes the text and its
            # newline separately.
            table = self.scenario_table('test')
            sys.stdout.write(
                f'Test scores per missing-modality scenario (%):\n{table}\n'
            )
            sys.stdout.flush()

    def scenario_table(self, stage: str = 'test') -> str:
        """Format the last computed scores of *stage* as a table.

        Args:
            stage: ``'val'`` or ``'test'``.

        Returns:
            A plain-text table (percent), one row per scenario.
        """
        return format_scenario_table(
            self.scenario_scores.get(stage, {}), self.class_names
        )

    def _log_figure(
        self, batch: dict[str, Any], available: Tensor, predictions: dict[str, Tensor]
    ) -> None:
        """Log a figure of the batch's first sample to TensorBoard, if in use.

        Args:
            batch: The batch.
            available: Its ``(B, M)`` availability.
            predictions: Scenario name to the first sample's prediction.
        """
        every = self.hparams['plot_every_n_epochs']
        if not every or self.current_epoch % every or self.trainer.sanity_checking:
            return
        logger = self.logger
        experiment = getattr(logger, 'experiment', None)
        if not hasattr(experiment, 'add_figure') or not self.trainer.is_global_zero:
            return
        images = {
            name: batch[image_key(name)][0]
            for name in self.modality_names
            if image_key(name) in batch
        }
        flags = {
            name: bool(available[0, index])
            for index, name in enumerate(self.modality_names)
        }
        mask = batch[MASK][0] if MASK in batch else None
        figure = plot_scenarios(
            images, mask, predictions, self.class_names, self.class_colors, flags
        )
        experiment.add_figure('val/scenarios', figure, global_step=self.global_step)  # type: ignore[union-attr]
        plt.close(figure)

    # --------------------------------------------------------------- predict

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
        inputs, available = self._inputs(batch)
        output: SegmentationOutput = self.model(inputs, available)
        result = {'probabilities': output.logits.softmax(dim=1)}
        for key in SHARED_KEYS:
            if key in batch:
                result[key] = batch[key]
        return result

    # ------------------------------------------------------------ checkpoint

    def setup(self, stage: str) -> None:
        """Check the model's modalities against the datamodule's, if it says.

        Args:
            stage: ``'fit'``, ``'validate'``, ``'test'`` or ``'predict'``.

        Raises:
            ConfigurationError: If the datamodule declares other modalities,
                another order or other band counts than ``modalities``, or
                reads other bands than ``weights_bands``.
        """
        datamodule = (
            getattr(self._trainer, 'datamodule', None) if self._trainer else None
        )
        try:
            declared = getattr(datamodule, 'modalities', None)
        except RuntimeError:  # not set up
            declared = None
        if not isinstance(declared, dict):
            return
        configured: dict[str, int] = dict(self.hparams['modalities'])
        for name in configured:
            if name not in declared:
                raise ConfigurationError(
                    f"modality '{name}' of the model is not in the data, which has "
                    f'{list(declared)}; remove it from model modalities or give the '
                    'datamodule a path for it.'
                )
        for name, bands in declared.items():
            if name not in configured:
                raise ConfigurationError(
                    f"the data has modality '{name}' that the model lacks "
                    f'(model modalities {list(configured)}); add {name}: {bands} to '
                    'the model modalities.'
                )
            if configured[name] != bands:
                raise ConfigurationError(
                    f"modality '{name}': the model expects {configured[name]} band(s) "
                    f'but the data has {bands}; set modalities.{name} to {bands}.'
                )
        if list(declared) != list(configured):
            raise ConfigurationError(
                f'the model lists its modalities as {list(configured)} but the data '
                f'as {list(declared)}; list them in the same order.'
            )
        if stage == 'fit':
            check_data_against_weights(
                self.pretrained_inputs, datamodule, self.hparams['weights_bands']
            )

    def on_fit_start(self) -> None:
        """Take the datamodule's normalisation statistics, to save with the model."""
        datamodule = getattr(self.trainer, 'datamodule', None)
        statistics = getattr(datamodule, 'statistics', None)
        if statistics:
            self.data_statistics = {
                name: stats.to_dict() if hasattr(stats, 'to_dict') else dict(stats)
                for name, stats in statistics.items()
            }
        options = getattr(datamodule, 'reader_options', None)
        if isinstance(options, dict):
            self.reader_options = {name: dict(value) for name, value in options.items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the normalisation statistics and the package version.

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
        """Restore the normalisation statistics.

        Args:
            checkpoint: The checkpoint being read.
        """
        extra = checkpoint.get(CHECKPOINT_KEY) or {}
        self.data_statistics = extra.get('statistics')
        self.reader_options = extra.get('reader_options')
