"""The pixel grid of a prediction: CRS, geotransform and size."""

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform, transform_bounds

from ..errors import ConfigurationError, DataError

#: Fraction of a pixel within which coordinates count as on the grid.
GRID_TOLERANCE = 1e-6

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class OutputGrid:
    """A north-up pixel grid.

    Attributes:
        crs: Coordinate reference system.
        transform: Affine geotransform of the top-left pixel corner.
        width: Number of columns.
        height: Number of rows.

    .. versionadded:: 0.1
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)``, both positive."""
        return float(self.transform.a), float(-self.transform.e)

    @property
    def bounds(self) -> Bounds:
        """``(left, bottom, right, top)`` of the whole grid."""
        return self.window_bounds(0, 0, self.height, self.width)

    def window_bounds(self, row: int, col: int, height: int, width: int) -> Bounds:
        """Bounds of a window of the grid (which may extend past its edges).

        Args:
            row: First row of the window.
            col: First column of the window.
            height: Rows in the window.
            width: Columns in the window.

        Returns:
            ``(left, bottom, right, top)`` in :attr:`crs` units.
        """
        xres, yres = self.res
        left = self.transform.c + col * xres
        top = self.transform.f - row * yres
        return left, top - height * yres, left + width * xres, top

    def rows(self, start: int, stop: int) -> 'OutputGrid':
        """The sub-grid made of rows ``[start, stop)``.

        Args:
            start: First row.
            stop: Row after the last one.

        Returns:
            A grid with the same columns and pixel size.
        """
        return OutputGrid(
            self.crs,
            self.transform @ Affine.translation(0, start),
            self.width,
            stop - start,
        )


def check_north_up(transform: Affine, name: str) -> None:
    """Refuse rotated or south-up geotransforms.

    Args:
        transform: Geotransform of a raster.
        name: The raster's file name, for the message.

    Raises:
        DataError: If the transform is rotated, sheared or not north-up.
    """
    if transform.b != 0 or transform.d != 0 or transform.a <= 0 or transform.e >= 0:
        raise DataError(
            f'{name}: geotransform {tuple(transform)[:6]} is rotated or not '
            'north-up; warp it to a north-up grid first (e.g. gdalwarp).'
        )


def snap_to_grid(reference: Affine, bounds: Bounds) -> tuple[Affine, int, int]:
    """Smallest window of *reference*'s pixel grid that covers *bounds*.

    Args:
        reference: Geotransform whose pixel grid is kept.
        bounds: ``(left, bottom, right, top)`` to cover.

    Returns:
        The window's geotransform, width and height.
    """
    left, bottom, right, top = bounds
    inverse = ~reference
    col0, row0 = inverse @ (left, top)
    col1, row1 = inverse @ (right, bottom)
    first_col = math.floor(col0 + GRID_TOLERANCE)
    first_row = math.floor(row0 + GRID_TOLERANCE)
    last_col = math.ceil(col1 - GRID_TOLERANCE)
    last_row = math.ceil(row1 - GRID_TOLERANCE)
    transform = reference @ Affine.translation(first_col, first_row)
    return transform, max(last_col - first_col, 1), max(last_row - first_row, 1)


def _parse_res(res: float | Sequence[float]) -> tuple[float, float]:
    """Read a resolution argument as ``(x, y)``, both positive."""
    values = [float(res)] * 2 if isinstance(res, int | float) else list(map(float, res))
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise ConfigurationError(
            f'res must be one or two positive pixel sizes, got {res!r}.'
        )
    return values[0], values[1]


def _parse_bounds(bounds: Sequence[float]) -> Bounds:
    """Read a bounds argument ``(left, bottom, right, top)``."""
    values = [float(v) for v in bounds]
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        raise ConfigurationError(
            f'bounds must be (left, bottom, right, top) with left < right and '
            f'bottom < top, got {tuple(bounds)!r}.'
        )
    return values[0], values[1], values[2], values[3]


def parse_crs(crs: str | CRS) -> CRS:
    """Read a CRS argument (EPSG code, WKT, PROJ string or CRS).

    Args:
        crs: What the user gave.

    Returns:
        The CRS.

    Raises:
        ConfigurationError: If it is not a CRS rasterio understands.
    """
    if isinstance(crs, CRS):
        return crs
    try:
        return CRS.from_user_input(crs)
    except Exception as error:
        raise ConfigurationError(
            f'crs {crs!r} is not a coordinate reference system rasterio understands '
            f'(use e.g. EPSG:32631): {error}'
        ) from error


def output_grid(
    reference_crs: CRS,
    reference_transform: Affine,
    reference_bounds: Bounds,
    *,
    crs: str | CRS | None = None,
    res: float | Sequence[float] | None = None,
    bounds: Sequence[float] | None = None,
) -> OutputGrid:
    """Work out the output grid from the reference input and user overrides.

    With no override the grid is *reference_bounds* on the reference pixel
    grid (for a single file: exactly that file's grid). When the CRS and pixel
    size stay the reference's, user *bounds* are widened to the reference
    pixel grid, so output pixels stay aligned with the input's. Otherwise the
    grid starts at the top-left corner of the bounds (the reference bounds
    transformed to *crs* by default) with pixel size *res* (by default GDAL's
    suggestion for the reprojection), and extends right and down to cover them.

    Args:
        reference_crs: CRS of the reference input (first file of the first
            modality).
        reference_transform: Geotransform of that file.
        reference_bounds: Union of the bounds of the reference modality's files,
            in *reference_crs*.
        crs: Output CRS, if not the reference's.
        res: Output pixel size (one value or ``(x, y)``), if not the reference's.
        bounds: Output ``(left, bottom, right, top)`` in the output CRS.

    Returns:
        The output grid.

    Raises:
        ConfigurationError: If an override is malformed.
    """
    check_north_up(reference_transform, 'reference input')
    out_crs = reference_crs if crs is None else parse_crs(crs)
    reference_res = (reference_transform.a, -reference_transform.e)
    out_res = reference_res if res is None else _parse_res(res)
    out_bounds = None if bounds is None else _parse_bounds(bounds)

    same_crs = out_crs == reference_crs
    if same_crs and all(
        math.isclose(a, b, rel_tol=1e-9)
        for a, b in zip(out_res, reference_res, strict=True)
    ):
        transform, width, height = snap_to_grid(
            reference_transform, out_bounds or reference_bounds
        )
        return OutputGrid(out_crs, transform, width, height)

    if out_bounds is None or res is None:
        columns = max(
            round((reference_bounds[2] - reference_bounds[0]) / reference_res[0]), 1
        )
        rows = max(
            round((reference_bounds[3] - reference_bounds[1]) / reference_res[1]), 1
        )
        default_transform, _, _ = calculate_default_transform(
            reference_crs, out_crs, columns, rows, *reference_bounds
        )
        if res is None:
            out_res = (default_transform.a, -default_transform.e)
        if out_bounds is None:
            out_bounds = transform_bounds(
                reference_crs, out_crs, *reference_bounds, densify_pts=21
            )
    assert out_bounds is not None
    left, bottom, right, top = out_bounds
    transform = Affine(out_res[0], 0.0, left, 0.0, -out_res[1], top)
    width = max(math.ceil((right - left) / out_res[0] - GRID_TOLERANCE), 1)
    height = max(math.ceil((top - bottom) / out_res[1] - GRID_TOLERANCE), 1)
    return OutputGrid(out_crs, transform, width, height)


def bounds_intersect(a: Bounds, b: Bounds) -> bool:
    """Whether two ``(left, bottom, right, top)`` boxes share some area.

    Args:
        a: First box.
        b: Second box.

    Returns:
        True if the interiors intersect.
    """
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def format_bounds(bounds: Bounds) -> str:
    """Bounds as a short string for error messages.

    Args:
        bounds: ``(left, bottom, right, top)``.

    Returns:
        The four numbers rounded to a few decimals.
    """
    return '(' + ', '.join(f'{v:.10g}' for v in bounds) + ')'


def add_grid_arguments(parser: argparse.ArgumentParser, noun: str) -> None:
    """Add the ``--crs``, ``--res`` and ``--bounds`` options of a grid.

    The commands that write rasters on a common grid (``predict-geotiff``,
    ``align``) take it the same way; :func:`output_grid` reads the values.

    Args:
        parser: The command's parser.
        noun: What the grid is called in the help texts (``'output'``,
            ``'grid'``).
    """
    parser.add_argument('--crs', help=f"{noun} CRS (default: the first input's)")
    parser.add_argument(
        '--res', nargs='+', type=float, metavar='RES', help=f'{noun} pixel size (x [y])'
    )
    parser.add_argument(
        '--bounds',
        nargs=4,
        type=float,
        metavar=('LEFT', 'BOTTOM', 'RIGHT', 'TOP'),
        help=f'{noun} bounds in the {noun} CRS',
    )
