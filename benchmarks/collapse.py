"""Feature collapse under translation alignment, with and without stop-gradient.

Trains ONLY :class:`~torchgeo_stars.losses.TranslationAlignmentLoss` on a fixed
toy problem (two modalities, tiny conv encoders, 1x1 conv translators in both
directions) and prints the feature spread over training steps: the mean over
channels of the per-channel standard deviation, across all pixels of all
samples, of the L2-normalised specific features of both modalities. Spread 0
means collapse (every pixel of every sample maps to one vector); random unit
vectors in C dimensions give about ``1 / sqrt(C)``.

Usage::

    .venv/bin/python benchmarks/collapse.py [--seeds 3] [--steps 1600]

Two optimisers are run: Adam (lr 1e-3) and SGD with momentum 0.9 (lr 0.05).
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchgeo_stars.losses import TranslationAlignmentLoss

CHANNELS = 16


def encoder(in_channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, CHANNELS, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1),
    )


def translator() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(CHANNELS, CHANNELS, 1), nn.ReLU(), nn.Conv2d(CHANNELS, CHANNELS, 1)
    )


def toy_data(generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Optical-like 3-band input and a SAR-like 2-band nonlinear view of it."""
    x_a = torch.randn(8, 3, 16, 16, generator=generator)
    mixing = torch.randn(2, 3, 3, 3, generator=generator) / 3
    x_b = torch.tanh(F.conv2d(x_a, mixing, padding=1))
    x_b = x_b + 0.1 * torch.randn(x_b.shape, generator=generator)
    return x_a, x_b


def spread(features: list[Tensor]) -> float:
    """Per-modality mean per-channel std of L2-normalised features, averaged.

    Each modality is measured on its own (pooling them would count two
    collapsed modalities at two different constants as spread).
    """
    values = [
        F.normalize(f, dim=1)
        .permute(0, 2, 3, 1)
        .reshape(-1, f.shape[1])
        .std(dim=0)
        .mean()
        for f in features
    ]
    return float(torch.stack(values).mean())


def run(
    seed: int,
    stop_gradient: bool,
    steps: int,
    optimizer_name: str,
    lr: float,
    record: list[int],
) -> tuple[dict[int, float], float]:
    """Train the toy; return the spread at the recorded steps and the last loss."""
    torch.manual_seed(seed)
    x_a, x_b = toy_data(torch.Generator().manual_seed(seed))
    enc_a, enc_b = encoder(3), encoder(2)
    t_ab, t_ba = translator(), translator()
    params = [p for m in (enc_a, enc_b, t_ab, t_ba) for p in m.parameters()]
    optimizer: torch.optim.Optimizer
    if optimizer_name == 'adam':
        optimizer = torch.optim.Adam(params, lr=lr)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    criterion = TranslationAlignmentLoss(stop_gradient=stop_gradient)
    available = torch.ones(x_a.shape[0], 2, dtype=torch.bool)
    spreads: dict[int, float] = {}
    loss = torch.zeros(())
    for step in range(steps + 1):
        s_a, s_b = enc_a(x_a), enc_b(x_b)
        if step in record:
            spreads[step] = spread([s_a.detach(), s_b.detach()])
        if step == steps:
            break
        loss = criterion(
            {('a', 'b'): [t_ab(s_a)], ('b', 'a'): [t_ba(s_b)]},
            {'a': [s_a], 'b': [s_b]},
            available,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return spreads, float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, default=3)
    parser.add_argument('--steps', type=int, default=1600)
    args = parser.parse_args()
    record = sorted({0, args.steps // 16, args.steps // 4, args.steps // 2, args.steps})
    torch.set_num_threads(1)
    start = time.perf_counter()
    print(f'toy: 2 modalities, C={CHANNELS}, {args.seeds} seeds, alignment loss only')
    print('spread = mean per-channel std of L2-normalised features (0 = collapsed)')
    header = [
        'optimiser',
        'stop_gradient',
        *[f'step {s}' for s in record],
        'final loss',
    ]
    print(' | '.join(f'{h:>15}' for h in header))
    for optimizer_name, lr in (('adam', 1e-3), ('sgd', 0.05)):
        for stop_gradient in (True, False):
            results = [
                run(seed, stop_gradient, args.steps, optimizer_name, lr, record)
                for seed in range(args.seeds)
            ]
            cells = [f'{optimizer_name} {lr:g}', str(stop_gradient)]
            for step in record:
                values = [r[0][step] for r in results]
                cells.append(f'{statistics.mean(values):.3f} [{min(values):.3f}]')
            cells.append(f'{statistics.mean(r[1] for r in results):.4f}')
            print(' | '.join(f'{c:>15}' for c in cells))
    print('cells: mean over seeds [min over seeds]')
    print(f'elapsed {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
