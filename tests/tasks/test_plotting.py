import matplotlib.pyplot as plt
import numpy as np
import torch

from torchgeo_stars.tasks.plotting import (
    default_colors,
    plot_scenario_maps,
    plot_scenarios,
)


def test_rgb_bands_put_the_red_band_first() -> None:
    image = torch.zeros(4, 8, 8)
    image[2] = torch.linspace(0, 1, 64).reshape(8, 8)  # red band of B, G, R, NIR
    figure = plot_scenarios(
        {'optical': image}, None, {}, ['a'], rgb_bands={'optical': (2, 1, 0)}
    )
    try:
        shown = np.asarray(figure.get_axes()[0].get_images()[0].get_array())
    finally:
        plt.close(figure)
    assert shown.shape == (8, 8, 3)
    # Red lands in the first RGB channel and is the only one that varies.
    assert np.ptp(shown[..., 0]) > 0.5
    assert np.ptp(shown[..., 1]) == 0


def test_plot_has_a_panel_per_modality_label_and_scenario() -> None:
    images = {'optical': torch.rand(4, 16, 16), 'sar': torch.rand(2, 16, 16)}
    mask = torch.randint(0, 3, (16, 16))
    predictions = {'optical+sar': mask, 'sar': torch.zeros(16, 16, dtype=torch.long)}
    figure = plot_scenarios(
        images, mask, predictions, ['a', 'b', 'c'], available={'optical': False}
    )
    axes = figure.get_axes()
    assert len(axes) == 2 + 1 + 2
    titles = [axis.get_title() for axis in axes]
    assert titles == ['optical (missing)', 'sar', 'label', 'optical+sar', 'sar']
    plt.close(figure)


def test_default_colors_are_distinct() -> None:
    colors = default_colors(12)
    assert len(set(colors)) == 12
    assert all(0 <= value <= 255 for color in colors for value in color)


def test_ignored_labels_are_not_drawn_as_a_class() -> None:
    images = {'sar': torch.rand(2, 8, 8)}
    mask = torch.zeros(8, 8, dtype=torch.long)
    mask[:4] = 255
    figure = plot_scenarios(images, mask, {}, ['a', 'b'])
    label_axis = figure.get_axes()[1]
    shown = label_axis.get_images()[0].get_array()
    assert shown is not None
    hidden = np.ma.getmaskarray(shown)
    assert hidden[:4].all()
    assert not hidden[4:].any()
    plt.close(figure)


def test_scenario_maps_have_a_panel_per_scenario_and_a_bar_each() -> None:
    scenarios = ['optical+sar', 'optical', 'sar']
    predictions = {name: torch.randint(0, 3, (12, 12)) for name in scenarios}
    predictions['sar'][0, 0] = 255  # nodata is left blank
    miou = {'optical+sar': 0.5, 'optical': 0.25, 'sar': float('nan')}
    figure = plot_scenario_maps(
        torch.rand(4, 12, 12),
        torch.randint(0, 3, (12, 12)),
        predictions,
        miou,
        ['a', 'b', 'c'],
        quicklook_title='optical (quicklook)',
    )
    try:
        titles = [axis.get_title() for axis in figure.axes]
        assert titles[:2] == ['optical (quicklook)', 'label']
        assert titles[2:5] == scenarios
        bars = figure.axes[-1]
        heights = [patch.get_height() for patch in bars.patches]  # type: ignore[attr-defined]
        assert heights[:2] == [50.0, 25.0]
        assert np.isnan(heights[2])
        assert [tick.get_text() for tick in bars.get_xticklabels()] == scenarios
        legend = figure.axes[-2].get_legend()
        assert legend is not None
        assert [text.get_text() for text in legend.get_texts()] == ['a', 'b', 'c']
    finally:
        plt.close(figure)
