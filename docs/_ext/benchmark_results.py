"""Sphinx directives that render the benchmark results the harness wrote.

``benchmarks/accuracy.py --output NAME`` writes ``NAME.json``; these
directives turn such a file into tables at docs build time, so the figures
exist once, in ``benchmarks/results/``:

* ``.. benchmark-table:: benchmarks/results/accuracy.json`` renders one
  metric (``:metric:`` ``miou`` (default), ``mf1`` or ``rare_iou``) as
  mean ± std over the seeds, one row per configuration (``:configs:`` to
  choose and order them) and one column per scenario, with ``:means:`` the
  mean over all scenarios and over those with a modality missing;
* ``.. benchmark-goals:: FILE`` lists the goals the run checked and whether
  they held;
* ``.. benchmark-setting:: FILE`` states the run's setting in one line.

Paths are relative to the repository root.
"""

import json
import math
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]


def _load(directive: SphinxDirective) -> dict[str, Any]:
    """Read the JSON file named by the directive's argument."""
    path = ROOT / directive.arguments[0]
    directive.env.note_dependency(str(path))
    if not path.is_file():
        raise directive.error(f'benchmark result {path} does not exist')
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def _cell(stats: dict[str, float] | None) -> str:
    """``mean ± std`` with one decimal (std left out for one seed)."""
    if stats is None or not math.isfinite(stats.get('mean', math.nan)):
        return 'n/a'
    std = stats.get('std', math.nan)
    if math.isfinite(std) and std > 0:
        return f'{stats["mean"]:.1f} ± {std:.1f}'
    return f'{stats["mean"]:.1f}'


def _table(header: list[str], rows: list[list[str]], title: str) -> nodes.table:
    """A docutils table with a title, a header row and body rows."""
    table = nodes.table()
    table += nodes.title(text=title)
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for target, cells in ((head, [header]), (body, rows)):
        for values in cells:
            row = nodes.row()
            for value in values:
                entry = nodes.entry()
                entry += nodes.paragraph(text=value)
                row += entry
            target += row
    return table


class BenchmarkTable(SphinxDirective):
    """One metric of an accuracy result, per configuration and scenario."""

    required_arguments = 1
    option_spec = {
        'metric': directives.unchanged,
        'configs': directives.unchanged,
        'means': directives.flag,
        'caption': directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        """Build the table."""
        result = _load(self)
        metric = self.options.get('metric', 'miou')
        summary = result['summary'][metric]
        scenarios: list[str] = result['scenarios']
        if metric == 'rare_iou':
            scenarios = scenarios[:1]
        configs = (
            self.options['configs'].split()
            if 'configs' in self.options
            else list(summary)
        )
        header = ['config', *scenarios]
        if 'means' in self.options:
            header += ['mean of all', 'mean with one missing or more']
        rows = []
        for config in configs:
            if config not in summary:
                raise self.error(f'{self.arguments[0]} has no configuration {config!r}')
            stats = summary[config]
            row = [config, *(_cell(stats.get(s)) for s in scenarios)]
            if 'means' in self.options:
                means = [stats[s]['mean'] for s in scenarios]
                row.append(f'{sum(means) / len(means):.1f}')
                missing = means[1:]
                row.append(f'{sum(missing) / len(missing):.1f}')
            rows.append(row)
        names = {'miou': 'mIoU', 'mf1': 'mF1', 'rare_iou': 'IoU of the rarest class'}
        seeds = result['setting'].get('seeds', [])
        title = self.options.get(
            'caption',
            f'{names.get(metric, metric)} (%), mean ± std over {len(seeds)} seed(s) '
            f'({self.arguments[0]})',
        )
        return [_table(header, rows, title)]


class BenchmarkGoals(SphinxDirective):
    """The goals an accuracy run checked, and whether they held."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Build the bullet list."""
        result = _load(self)
        bullets = nodes.bullet_list()
        for goal in result.get('goals', []):
            item = nodes.list_item()
            paragraph = nodes.paragraph()
            paragraph += nodes.Text(f'{goal["goal"]}: ')
            paragraph += nodes.strong(text='met' if goal['holds'] else 'not met')
            if goal.get('detail'):
                paragraph += nodes.Text(f' ({goal["detail"]})')
            item += paragraph
            bullets += item
        return [bullets]


class BenchmarkSetting(SphinxDirective):
    """One line stating an accuracy run's setting."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Build the paragraph."""
        setting = _load(self)['setting']
        parts = [f'{key}={value}' for key, value in setting.items()]
        paragraph = nodes.paragraph()
        paragraph += nodes.Text('Setting: ')
        paragraph += nodes.literal(text=', '.join(parts))
        return [paragraph]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives.

    Args:
        app: The Sphinx application.

    Returns:
        Extension metadata.
    """
    app.add_directive('benchmark-table', BenchmarkTable)
    app.add_directive('benchmark-goals', BenchmarkGoals)
    app.add_directive('benchmark-setting', BenchmarkSetting)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
