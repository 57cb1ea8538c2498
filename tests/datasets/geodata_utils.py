"""Paths and geometry of the multimodal dataset fixtures (tests/data/)."""

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / 'data'
MULTIMODAL = DATA / 'multimodal'
SENTINEL2 = DATA / 'sentinel2'
CORRUPT = DATA / 'corrupt'

# Geometry of tests/data/multimodal (see its data.py): optical grid origin and
# resolution (EPSG:32631), and the bright square's rows / cols on that grid.
X0, Y0, RES, SIZE = 735600.0, 4987600.0, 10.0, 64
SQUARE_ROWS, SQUARE_COLS = (20, 30), (12, 22)
OPTICAL_REGEX = r'optical_(?P<date>\d{8})\.tif'


def window(row: int, col: int, height: int, width: int) -> tuple[slice, slice]:
    """Spatial query of a window of the optical grid, in EPSG:32631."""
    xmin = X0 + col * RES
    ymax = Y0 - row * RES
    return slice(xmin, xmin + width * RES), slice(ymax - height * RES, ymax)
