"""Mixed precision: float32 alignment losses, bf16 training and bf16 inference."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn
from torch.utils.data import DataLoader

from torchgeo_stars.errors import ConfigurationError
from torchgeo_stars.inference import Predictor, cli, predict_geotiff
from torchgeo_stars.losses import PSALoss, TranslationAlignmentLoss
from torchgeo_stars.models.outputs import SegmentationOutput

from .inference.helpers import read, write_raster
from .models.helpers import TWO, make_stars
from .tasks.helpers import random_batch, tiny_task


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """One torch thread: much faster than two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def psa_inputs() -> tuple[dict[str, Tensor], Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    embeddings = {
        name: torch.randn(2, 8, 6, 6, generator=generator, requires_grad=True)
        for name in ('optical', 'sar', 'dsm')
    }
    mask = torch.randint(0, 3, (2, 12, 12), generator=generator)
    available = torch.tensor([[True, True, False], [True, True, True]])
    return embeddings, mask, available


def translation_inputs() -> tuple[
    dict[tuple[str, str], list[Tensor]], dict[str, list[Tensor]], Tensor
]:
    generator = torch.Generator().manual_seed(1)
    specific = {
        name: [torch.randn(3, 4, 5, 5, generator=generator) for _ in range(2)]
        for name in ('a', 'b')
    }
    translated = {
        pair: [torch.randn(3, 4, 5, 5, generator=generator) for _ in range(2)]
        for pair in (('a', 'b'), ('b', 'a'))
    }
    available = torch.tensor([[True, True], [True, False], [True, True]])
    return translated, specific, available


def test_psa_loss_is_float32_under_bf16_autocast() -> None:
    embeddings, mask, available = psa_inputs()
    loss = PSALoss(n_per_class=16)
    expected = loss(embeddings, mask, available, torch.Generator().manual_seed(0))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        # Autocast must not cast the similarity matmul to bfloat16.
        got = loss(embeddings, mask, available, torch.Generator().manual_seed(0))
        # bfloat16 embeddings (a bf16 model's output) are upcast, not kept.
        bf16 = {name: e.bfloat16() for name, e in embeddings.items()}
        from_bf16 = loss(bf16, mask, available, torch.Generator().manual_seed(0))
    upcast = {name: e.float() for name, e in bf16.items()}
    reference = loss(upcast, mask, available, torch.Generator().manual_seed(0))
    assert got.dtype == from_bf16.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(from_bf16, reference, rtol=1e-6, atol=1e-6)
    from_bf16.backward()
    for name, tensor in embeddings.items():
        assert tensor.grad is not None, name
        assert torch.isfinite(tensor.grad).all()


def test_translation_loss_is_float32_under_bf16_autocast() -> None:
    translated, specific, available = translation_inputs()
    loss = TranslationAlignmentLoss()
    expected = loss(translated, specific, available)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = loss(translated, specific, available)
        to_bf16 = {p: [t.bfloat16() for t in ts] for p, ts in translated.items()}
        sp_bf16 = {m: [t.bfloat16() for t in ts] for m, ts in specific.items()}
        from_bf16 = loss(to_bf16, sp_bf16, available)
    reference = loss(
        {p: [t.float() for t in ts] for p, ts in to_bf16.items()},
        {m: [t.float() for t in ts] for m, ts in sp_bf16.items()},
        available,
    )
    assert got.dtype == from_bf16.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(from_bf16, reference, rtol=1e-6, atol=1e-6)


class PrecisionProbe(Callback):
    """Record losses, gradient finiteness and the logits' dtype of each step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.finite_grads: list[bool] = []
        self.logit_dtypes: list[torch.dtype] = []

    def on_fit_start(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule
    ) -> None:
        def hook(_: nn.Module, __: Any, output: SegmentationOutput) -> None:
            self.logit_dtypes.append(output.logits.dtype)

        pl_module.model.register_forward_hook(hook)  # type: ignore[union-attr]

    def on_train_batch_end(
        self,
        trainer: lightning.Trainer,
        pl_module: lightning.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.losses.append(float(outputs['loss']))

    def on_before_optimizer_step(
        self,
        trainer: lightning.Trainer,
        pl_module: lightning.LightningModule,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        assert grads
        self.finite_grads.append(all(bool(torch.isfinite(g).all()) for g in grads))


def test_bf16_mixed_training_and_testing_stay_finite_on_cpu() -> None:
    task = tiny_task(n_per_class=16)
    batches = [random_batch(batch_size=4, size=32, seed=seed) for seed in range(3)]
    loader: DataLoader[Any] = DataLoader(batches, batch_size=None)  # type: ignore[arg-type]
    probe = PrecisionProbe()
    trainer = lightning.Trainer(
        accelerator='cpu',
        precision='bf16-mixed',
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    trainer.fit(task, train_dataloaders=loader)
    assert trainer.global_step == len(batches)
    # The model ran in bfloat16: the precision flag reached the forward pass.
    assert probe.logit_dtypes
    assert set(probe.logit_dtypes) == {torch.bfloat16}
    assert len(probe.losses) == len(batches)
    assert all(np.isfinite(probe.losses))
    assert probe.finite_grads == [True] * len(batches)
    for name in ('train_loss_seg', 'train_loss_tr', 'train_loss_psa'):
        assert torch.isfinite(trainer.callback_metrics[name]), name
    # The parameters stay float32 (mixed, not pure, bf16) and finite.
    for parameter in task.parameters():
        assert parameter.dtype == torch.float32
        assert torch.isfinite(parameter).all()
    conv = next(m for m in task.modules() if isinstance(m, nn.Conv2d))
    test_dtypes: list[torch.dtype] = []
    conv.register_forward_hook(lambda _, __, out: test_dtypes.append(out.dtype))
    trainer.test(task, dataloaders=loader, verbose=False)
    # Testing runs under bf16 autocast too.
    assert test_dtypes
    assert set(test_dtypes) == {torch.bfloat16}
    scores = task.scenario_scores['test']
    assert len(scores) == 7
    for score in scores.values():
        assert 0 <= score.miou <= 1


def smooth(rng: np.random.Generator, bands: int, size: int) -> np.ndarray:
    """Random fields smooth over a few pixels, like imagery."""
    coarse = torch.from_numpy(rng.normal(size=(1, bands, size // 8, size // 8)))
    fine = nn.functional.interpolate(coarse, size=(size, size), mode='bilinear')
    return (
        fine[0] + 0.1 * torch.from_numpy(rng.normal(size=(bands, size, size)))
    ).numpy()


def test_bf16_inference_gives_the_float32_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    optical = write_raster(
        tmp_path / 'optical.tif', smooth(rng, 3, 192).astype(np.float32)
    )
    sar = write_raster(tmp_path / 'sar.tif', smooth(rng, 2, 192).astype(np.float32))
    model = make_stars(TWO)
    dtypes: list[torch.dtype] = []
    model.register_forward_hook(
        lambda _, __, output: dtypes.append(output.logits.dtype)
    )
    common: dict[str, Any] = {
        'modalities': TWO,
        'class_names': ['a', 'b', 'c'],
        'patch_size': 64,
        'overlap': 16,
        'batch_size': 4,
        'device': 'cpu',
        'progress': False,
    }
    inputs = {'optical': optical, 'sar': sar}
    full = predict_geotiff(model, inputs, tmp_path / 'fp32.tif', **common)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    half = predict_geotiff(
        model, inputs, tmp_path / 'bf16.tif', precision='bf16', **common
    )
    assert set(dtypes) == {torch.bfloat16}
    expected, got = read(full, 1), read(half, 1)
    assert expected.shape == got.shape == (192, 192)
    # The model predicts several classes, so agreement is not trivial.
    assert len(np.unique(expected)) >= 2
    agreement = (expected == got).mean()
    print(f'bf16 / float32 class agreement: {agreement:.5f}')
    assert agreement >= 0.995


def test_inference_refuses_an_unknown_precision(tmp_path: Path) -> None:
    optical = write_raster(
        tmp_path / 'optical.tif', np.zeros((3, 64, 64), dtype=np.float32)
    )
    with pytest.raises(ConfigurationError, match="precision must be '32' or 'bf16'"):
        predict_geotiff(
            make_stars(TWO),
            {'optical': optical},
            tmp_path / 'out.tif',
            modalities=TWO,
            class_names=['a', 'b', 'c'],
            patch_size=64,
            overlap=16,
            device='cpu',
            precision='16',  # type: ignore[arg-type]
            progress=False,
        )
    assert not (tmp_path / 'out.tif').exists()


@pytest.mark.parametrize('precision', ['32', 'bf16'])
def test_predict_geotiff_cli_passes_the_precision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, precision: str
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        cli,
        'load_predictor',
        lambda path: Predictor(make_stars(TWO), dict(TWO), ['a', 'b', 'c']),
    )
    monkeypatch.setattr(
        cli, 'predict_geotiff', lambda *args, **kwargs: calls.append(kwargs)
    )
    argv = ['--checkpoint', 'm.ckpt', '--optical', 'a.tif', '--output', 'o.tif']
    assert cli.main([*argv, '--precision', precision]) == 0
    assert calls[0]['precision'] == precision
    assert cli.main([*argv, '--precision', 'fp16']) == 2
