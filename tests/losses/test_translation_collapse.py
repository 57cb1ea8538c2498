"""A short training run on the translation loss alone must not collapse.

The comparison with ``stop_gradient=False`` over seeds and steps is in
``benchmarks/collapse.py``. On this toy, 150 steps of SGD with momentum leave a
per-modality spread of about 0.06-0.11 with stop-gradient (0.2 at start) and
under 0.02 without it, so the bound below separates the two with a margin.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from torchgeo_stars.losses import TranslationAlignmentLoss

CHANNELS = 16


def spread(features: Tensor) -> float:
    """Mean per-channel std of the L2-normalised features over all pixels."""
    flat = F.normalize(features, dim=1).permute(0, 2, 3, 1).reshape(-1, CHANNELS)
    return float(flat.std(dim=0).mean())


def conv_net(in_channels: int, kernel: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, CHANNELS, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.Conv2d(CHANNELS, CHANNELS, kernel, padding=kernel // 2),
    )


def test_stop_gradient_keeps_features_spread() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x_a = torch.randn(4, 3, 12, 12)
        mixing = torch.randn(2, 3, 3, 3) / 3
        x_b = torch.tanh(F.conv2d(x_a, mixing, padding=1))
        x_b = x_b + 0.1 * torch.randn(x_b.shape)
        inputs = {'a': x_a, 'b': x_b}
        encoders = nn.ModuleDict({'a': conv_net(3, 3), 'b': conv_net(2, 3)})
        translators = nn.ModuleDict(
            {'a_b': conv_net(CHANNELS, 1), 'b_a': conv_net(CHANNELS, 1)}
        )
    optimizer = torch.optim.SGD(
        [*encoders.parameters(), *translators.parameters()], lr=0.05, momentum=0.9
    )
    criterion = TranslationAlignmentLoss(stop_gradient=True)
    available = torch.ones(4, 2, dtype=torch.bool)

    def step() -> tuple[dict[str, Tensor], Tensor]:
        specific = {m: encoders[m](inputs[m]) for m in inputs}
        translated = {
            (i, j): [translators[f'{i}_{j}'](specific[i])]
            for i, j in [('a', 'b'), ('b', 'a')]
        }
        loss = criterion(translated, {m: [f] for m, f in specific.items()}, available)
        return specific, loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    try:
        first_specific, first_loss = step()
        initial = min(spread(f.detach()) for f in first_specific.values())
        for _ in range(150):
            loss = step()[1]
            optimizer.zero_grad()
            torch.autograd.backward(loss)
            optimizer.step()
        final_specific, final_loss = step()
    finally:
        torch.set_num_threads(threads)
    final = min(spread(f.detach()) for f in final_specific.values())

    assert initial > 0.15  # sanity: random features start spread
    assert final_loss.item() < first_loss.item() / 2  # training did align them
    assert final > 0.04, f'features collapsed: spread {initial:.3f} -> {final:.3f}'
