"""Stand-in for pyogrio on the GPU machine, which lacks it (see README.md).

TorchGeo 0.10 imports pyogrio when it is imported but calls only
``vsi_listtree``, to list the files inside archives and cloud paths, which the
benchmarks never read. This module is put first on ``PYTHONPATH`` by
``run.sh`` instead of carrying the 33 MB wheel; anything else fails loudly.
"""

__version__ = '0.0.0+stand-in'


def vsi_listtree(path: str, pattern: str | None = None) -> list[str]:
    """Refuse: the benchmarks read no archive or cloud path."""
    raise NotImplementedError(
        f'pyogrio stand-in: cannot list {path!r}; install the real pyogrio'
    )
