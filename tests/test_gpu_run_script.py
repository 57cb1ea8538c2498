"""``benchmarks/gpu/run.sh``: the GPU session's script, run in its CPU smoke mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / 'benchmarks' / 'gpu' / 'run.sh'
TABLES = (
    'accuracy.json',
    'accuracy.md',
    'step_time_32.md',
    'step_time_bf16.md',
    'inference.md',
    'data_throughput.md',
    'results.jsonl',
    'run.log',
)


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of the markdown table whose header starts with *first_cell*."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith(f'| {first_cell} |')
    )
    assert set(lines[start + 1].replace('|', '').replace(':', '')) == {'-'}
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


def run_script(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ['bash', str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHON': sys.executable, **(env or {})},
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_smoke_run_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / 'out'
    done = run_script('--smoke', str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Eight files: what the device tool brings back at most.
    assert sorted(p.name for p in out.iterdir()) == sorted(TABLES)

    accuracy = json.loads((out / 'accuracy.json').read_text())
    assert [(r['config'], r['seed']) for r in accuracy['runs']] == [
        ('stars', 0),
        ('early_fusion', 0),
    ]
    assert accuracy['setting']['precision'] == 'bf16-mixed'
    assert accuracy['setting']['vehicle_scale'] == 3.0
    assert accuracy['setting']['max_time'] > 0
    assert all(r['steps'] >= 1 for r in accuracy['runs'])
    assert accuracy['environment'][0]['jobs'] == 2
    report = (out / 'accuracy.md').read_text()
    for header in ('config', 'config'):
        rows = table_rows(report, header)
        assert [row[0].split(' ')[0] for row in rows] == ['stars', 'early_fusion']
        assert all(len(row) == 9 for row in rows)  # config, 7 scenarios, rare

    for precision in ('32', 'bf16'):
        text = (out / f'step_time_{precision}.md').read_text()
        assert f'precision {precision}' in text.splitlines()[0]
        rows = table_rows(text, 'configuration')
        assert [row[0] for row in rows] == [
            'early_fusion_fpn',
            'stars',
            'stars_no_align',
        ]
        assert all(float(row[1]) > 0 for row in rows)

    inference = (out / 'inference.md').read_text()
    assert 'precision bf16' in inference.splitlines()[0]
    rows = table_rows(inference, 'size')
    assert [row[0] for row in rows] == ['256', '512']
    assert all(float(row[3]) > 0 for row in rows)

    data = (out / 'data_throughput.md').read_text()
    rows = table_rows(data, 'patch')
    assert [row[0] for row in rows] == ['64 px']
    assert all(float(cell) > 0 for cell in rows[0][1:])  # rates and ratios

    records = [
        json.loads(line) for line in (out / 'results.jsonl').read_text().splitlines()
    ]
    kinds = [r['benchmark'] for r in records]
    assert kinds.count('step_time') == 6
    assert kinds.count('inference_throughput') == 2
    assert kinds.count('accuracy') == 2
    for record in records:
        assert record['device']
        assert record['torch']
        assert record['precision']
    assert '== done' in (out / 'run.log').read_text()


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    done = run_script('--fast', str(tmp_path))
    assert done.returncode == 2
    assert 'unknown option --fast' in done.stderr


def test_gpu_mode_needs_the_wheels(tmp_path: Path) -> None:
    # Without --smoke the script installs the carried wheels first; with none
    # fetched it stops at once with one line saying what to do.
    wheels = ROOT / 'benchmarks' / 'gpu' / 'wheels'
    if wheels.is_dir() and any(wheels.glob('*.whl')):
        pytest.skip('wheels are fetched here')
    done = run_script(str(tmp_path / 'out'))
    assert done.returncode == 1
    # Everything after the option check also goes to run.log, stderr too.
    assert 'run benchmarks/gpu/fetch_wheels.sh' in done.stdout
    assert 'fetch_wheels.sh' in (tmp_path / 'out' / 'run.log').read_text()
