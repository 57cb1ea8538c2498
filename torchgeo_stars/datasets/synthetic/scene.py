"""Synthetic multimodal scene: optical, SAR and DSM GeoTIFFs with labels.

:func:`make_synthetic_scene` writes the kind of rasters a user meets in
practice: different CRSs, resolutions and extents per modality, nodata, a dated
optical file name, a label raster with a colour table. The scene (a small town
in farmland with a river) is generated once on a ground grid in the reference
CRS; each raster samples it by transforming its own pixels into that CRS, so the
rasters agree geographically. Some classes are separable by one modality only,
which makes missing-modality behaviour measurable (see :data:`SYNTHETIC_CLASSES`).

Classes, in index order for ``num_classes=8``; with fewer classes the kept
ones keep this order and a dropped class's areas become ``low_vegetation``
(the geometry is otherwise the same):

==================  =======  ===================================================
class               kept at  look-alike and the one modality that separates them
==================  =======  ===================================================
``impervious``      4+       roads, paving, parking lots
``building``        4+       impervious: DSM only (same optics and SAR)
``low_vegetation``  4+       grass, meadows, gardens
``tree``            6+       low vegetation: DSM only (same optics and SAR)
``water``           5+       shadowed ground: SAR only (as dark optically, at
                             terrain height in the DSM)
``vehicle``         4+       rare small objects, the rarest class (one or
                             two 10 m pixels each; ``vehicle_scale`` makes them
                             larger but fewer)
``bare_soil``       7+       impervious: optics only (same SAR and height)
``cropland``        8        low vegetation: SAR only (same optics and height)
==================  =======  ===================================================
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError

from ...errors import ConfigurationError
from ._grids import Bounds, Grid, grid_from_bounds, local_scale, reproject_bounds
from ._layout import Ground, build_ground
from ._render import (
    DSM_NODATA,
    OPTICAL_SCALE,
    SAR_LOOKS,
    dsm_image,
    label_image,
    optical_image,
    reference_optical,
    reference_sar,
    sar_image,
)

__all__ = [
    'SYNTHETIC_CLASSES',
    'SYNTHETIC_CLASS_COLORS',
    'SyntheticScene',
    'describe_scene',
    'make_synthetic_scene',
    'synthetic_class_names',
]

SYNTHETIC_CLASSES: tuple[str, ...] = (
    'impervious',
    'building',
    'low_vegetation',
    'tree',
    'water',
    'vehicle',
    'bare_soil',
    'cropland',
)
"""All class names, in index order for ``num_classes=8``."""

SYNTHETIC_CLASS_COLORS: Mapping[str, tuple[int, int, int]] = {
    'impervious': (255, 255, 255),
    'building': (0, 0, 255),
    'low_vegetation': (0, 255, 255),
    'tree': (0, 160, 0),
    'water': (0, 0, 110),
    'vehicle': (255, 255, 0),
    'bare_soil': (160, 110, 60),
    'cropland': (255, 170, 0),
}
"""RGB colour of each class (also written as the label raster's colour table)."""

# Classes kept for each supported number of classes (canonical codes).
_KEPT: Mapping[int, tuple[int, ...]] = {
    4: (0, 1, 2, 5),
    5: (0, 1, 2, 4, 5),
    6: (0, 1, 2, 3, 4, 5),
    7: (0, 1, 2, 3, 4, 5, 6),
    8: (0, 1, 2, 3, 4, 5, 6, 7),
}

REFERENCE_CRS = 'EPSG:32632'
"""Ground CRS the scene is generated in (WGS 84 / UTM zone 32N)."""
_ORIGIN = (302_460.0, 5_618_340.0)  # optical top-left corner, near Aachen
_REF_RES = 5.0
_OPTICAL_RES = 10.0
_SAR_RES = 20.0
_DSM_RES = 5.0
_LABEL_NODATA = 255
_ACQUISITION = '2024-06-12'
_FILES = {
    'optical': 'optical/S2_20240612_scene.tif',
    'sar': 'sar/S1_GRD_sigma0_scene.tif',
    'dsm': 'dsm/DSM_5m_scene.tif',
    'mask': 'mask/labels_scene.tif',
}


@dataclass(frozen=True)
class SyntheticScene:
    """Files and facts of a scene written by :func:`make_synthetic_scene`.

    .. versionadded:: 0.1

    Attributes:
        root: directory the scene was written to.
        images: modality name (``optical``, ``sar``, ``dsm``) -> GeoTIFF path.
        mask: label GeoTIFF path.
        class_names: class name of each label index.
        class_colors: RGB colour of each label index.
        crs: modality name or ``'mask'`` -> CRS string of that raster.
        resolution: modality name or ``'mask'`` -> pixel size ``(x, y)`` in
            that raster's CRS units.
        reference_crs: CRS of the ground grid the scene was generated on.
        reference_bounds: ``(left, bottom, right, top)`` of that grid, in
            ``reference_crs``; it covers every raster.
        common_bounds: a box in ``reference_crs`` that every raster covers.
        size: optical raster side in pixels.
        seed: random seed.
    """

    root: Path
    images: Mapping[str, Path]
    mask: Path
    class_names: tuple[str, ...]
    class_colors: tuple[tuple[int, int, int], ...]
    crs: Mapping[str, str]
    resolution: Mapping[str, tuple[float, float]]
    reference_crs: str
    reference_bounds: Bounds
    common_bounds: Bounds
    size: int
    seed: int

    @property
    def num_classes(self) -> int:
        """Number of label classes."""
        return len(self.class_names)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names in the order of :attr:`images`."""
        return tuple(self.images)


def synthetic_class_names(num_classes: int = 6) -> tuple[str, ...]:
    """Class names, in label-index order, of a scene with ``num_classes`` classes.

    Args:
        num_classes: number of classes, 4 to 8.

    Returns:
        The class names.

    Raises:
        ConfigurationError: (a ``ValueError``) if ``num_classes`` is not
            supported.
    """
    _check_num_classes(num_classes)
    return tuple(SYNTHETIC_CLASSES[code] for code in _KEPT[num_classes])


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or num_classes not in _KEPT:
        raise ConfigurationError(
            f'num_classes={num_classes!r} is not supported by the synthetic scene; '
            f'choose an integer from {min(_KEPT)} to {max(_KEPT)}'
        )


def _check_args(size: int, seed: int, sar_crs: str, vehicle_scale: float) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 8192:
        raise ConfigurationError(
            f'size={size!r} is not supported by the synthetic scene; '
            'choose an integer number of optical pixels from 32 to 8192'
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigurationError(f'seed={seed!r} must be a non-negative integer')
    if isinstance(vehicle_scale, bool) or not (
        isinstance(vehicle_scale, int | float) and 0.5 <= vehicle_scale <= 4.0
    ):
        raise ConfigurationError(
            f'vehicle_scale={vehicle_scale!r} is not supported by the synthetic '
            'scene; choose a number from 0.5 to 4 (1: cars of 11-18 m x 7 m)'
        )
    try:
        crs = CRS.from_user_input(sar_crs)
    except CRSError as error:
        raise ConfigurationError(
            f'sar_crs={sar_crs!r} is not a CRS pyproj understands ({error}); '
            "pass e.g. 'EPSG:32631' or 'EPSG:3857'"
        ) from error
    if not (crs.is_projected or crs.is_geographic):
        raise ConfigurationError(
            f'sar_crs={sar_crs!r} must be a projected or geographic 2D CRS'
        )


@dataclass(frozen=True)
class _Layout:
    """Grids of every raster, the reference grid and the common box."""

    grids: Mapping[str, Grid]
    ref: Grid
    common: Bounds


def _in_units(metres: float, scale: float) -> float:
    """A ground length in CRS units (kept round where the CRS is ~metric)."""
    return metres if abs(scale - 1.0) < 0.01 else float(f'{metres * scale:.6g}')


def _layout(size: int, sar_crs: str) -> _Layout:
    """Place the rasters: shifted, slightly larger or smaller extents."""
    left, top = _ORIGIN
    side = size * _OPTICAL_RES
    optical = grid_from_bounds(
        REFERENCE_CRS, (left, top - side, left + side, top), (_OPTICAL_RES,) * 2
    )
    inset = [max(1, round(f * size)) for f in (0.02, 0.01, 0.015, 0.03)]
    mask_bounds = (
        left + inset[0] * _OPTICAL_RES,
        top - side + inset[1] * _OPTICAL_RES,
        left + side - inset[2] * _OPTICAL_RES,
        top - inset[3] * _OPTICAL_RES,
    )
    mask = grid_from_bounds(REFERENCE_CRS, mask_bounds, (_OPTICAL_RES,) * 2)
    dsm_bounds = (
        left - 0.035 * side,
        top - 0.96 * side,
        left + 0.985 * side,
        top + 0.02 * side,
    )
    dsm = grid_from_bounds(REFERENCE_CRS, dsm_bounds, (_DSM_RES,) * 2)
    # The SAR grid covers this reference-frame box (shifted south-east, larger).
    sar_box = (
        left + 0.04 * side,
        top - 1.05 * side,
        left + 1.06 * side,
        top + 0.015 * side,
    )
    centre = ((sar_box[0] + sar_box[2]) / 2, (sar_box[1] + sar_box[3]) / 2)
    kx, ky = local_scale(REFERENCE_CRS, sar_crs, *centre)
    sar_res = (_in_units(_SAR_RES, kx), _in_units(_SAR_RES, ky))
    sar = grid_from_bounds(
        sar_crs, reproject_bounds(sar_box, REFERENCE_CRS, sar_crs), sar_res
    )
    grids = {'optical': optical, 'sar': sar, 'dsm': dsm, 'mask': mask}
    boxes = [reproject_bounds(g.bounds, g.crs, REFERENCE_CRS) for g in grids.values()]
    margin = 4 * _REF_RES
    union = (
        min(b[0] for b in boxes) - margin,
        min(b[1] for b in boxes) - margin,
        max(b[2] for b in boxes) + margin,
        max(b[3] for b in boxes) + margin,
    )
    ref = grid_from_bounds(REFERENCE_CRS, union, (_REF_RES, _REF_RES))
    inner = [optical.bounds, mask.bounds, dsm.bounds, sar_box]
    common = (
        max(b[0] for b in inner),
        max(b[1] for b in inner),
        min(b[2] for b in inner),
        min(b[3] for b in inner),
    )
    return _Layout(grids, ref, common)


def _generate(
    size: int, seed: int, num_classes: int, sar_crs: str, vehicle_scale: float = 1.0
) -> tuple[_Layout, Ground]:
    """Grids of every raster and the ground layers on the reference grid."""
    layout = _layout(size, sar_crs)
    shape = (layout.ref.height, layout.ref.width)
    ground = build_ground(
        shape,
        _REF_RES,
        seed,
        frozenset(_KEPT[num_classes]),
        vehicle_scale=float(vehicle_scale),
    )
    return layout, ground


def _samples(ground_res: float) -> int:
    """Sample points per pixel side so that samples fall ~one per ground pixel."""
    return max(1, round(ground_res / _REF_RES))


def _profile(grid: Grid, count: int, dtype: str, nodata: float) -> dict[str, Any]:
    predictor = 3 if dtype.startswith('float') else 2
    return {
        'driver': 'GTiff',
        'width': grid.width,
        'height': grid.height,
        'count': count,
        'dtype': dtype,
        'crs': grid.crs,
        'transform': grid.transform,
        'nodata': nodata,
        'tiled': True,
        'blockxsize': 256,
        'blockysize': 256,
        'compress': 'deflate',
        'predictor': predictor,
    }


def _write(
    path: Path,
    data: NDArray[Any],
    profile: dict[str, Any],
    descriptions: tuple[str, ...],
    tags: Mapping[str, str],
    *,
    units: str | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> None:
    """Write one GeoTIFF (to ``path``, which the caller later renames)."""
    with rasterio.open(path, 'w', **profile) as dst:
        dst.write(data)
        for band, text in enumerate(descriptions, start=1):
            dst.set_band_description(band, text)
            if units is not None:
                dst.set_band_unit(band, units)
        dst.update_tags(**tags)
        if colormap is not None:
            dst.write_colormap(1, colormap)


def make_synthetic_scene(
    root: str | os.PathLike[str],
    *,
    size: int = 512,
    seed: int = 0,
    num_classes: int = 6,
    sar_crs: str = 'EPSG:32631',
    vehicle_scale: float = 1.0,
    overwrite: bool = False,
) -> SyntheticScene:
    """Generate and write a synthetic optical / SAR / DSM scene with labels.

    Writes under ``root``:

    - ``optical/S2_20240612_scene.tif``: 4 bands (blue, green, red, nir), uint16
      reflectance x 10000, nodata 0 (a corner outside the swath), EPSG:32632,
      10 m, ``size`` x ``size`` pixels;
    - ``sar/S1_GRD_sigma0_scene.tif``: 2 bands (VV, VH), float32 linear sigma0
      with gamma speckle (4.4 looks), nodata 0, in ``sar_crs`` at 20 m on the
      ground (EPSG:32631 by default);
    - ``dsm/DSM_5m_scene.tif``: 1 band float32 surface height in metres,
      voids -9999, EPSG:32632, 5 m;
    - ``mask/labels_scene.tif``: uint8 class index, nodata 255, colour table,
      class names in tags, EPSG:32632, 10 m on the optical pixel grid.

    Extents differ (shifted, larger or smaller) but overlap over most of the
    scene. The same arguments give byte-identical rasters.

    Args:
        root: output directory (created if missing).
        size: optical raster side in pixels (32 to 8192); 512 covers 5.12 km.
        seed: random seed (non-negative).
        num_classes: number of classes, 4 to 8 (see the module docstring).
        sar_crs: CRS of the SAR raster; its pixel size is 20 m on the ground
            expressed in that CRS's units.
        vehicle_scale: factor on the vehicles' length and width, 0.5 to 4. At
            1 they are cars (11-18 m x 7 m: one or two label pixels, too small
            for a stride-4 decoder to delineate); their number falls as
            ``1 / vehicle_scale``, so at 3 they are blocks of 33-54 m x 21 m
            (3-5 by 2 pixels): still the rarest class, but one a model can
            delineate (the accuracy benchmark's ``--vehicle-scale``).
        overwrite: replace the files of an existing scene in ``root``.

    Returns:
        The written scene.

    Raises:
        ConfigurationError: (a ``ValueError``) if an argument is out of range
            or ``sar_crs`` is unknown.
        FileExistsError: if a scene file exists and ``overwrite`` is false.
    """
    _check_num_classes(num_classes)
    _check_args(size, seed, sar_crs, vehicle_scale)
    root = Path(root)
    paths = {name: root / relative for name, relative in _FILES.items()}
    if not overwrite:
        for path in paths.values():
            if path.exists():
                raise FileExistsError(
                    f'{path} already exists; pass overwrite=True (CLI: --overwrite) '
                    'to replace the synthetic scene, or choose another directory'
                )

    layout, ground = _generate(size, seed, num_classes, sar_crs, vehicle_scale)
    ref, grids = layout.ref, layout.grids
    kept = _KEPT[num_classes]
    lookup = np.full(len(SYNTHETIC_CLASSES), _LABEL_NODATA, dtype=np.uint8)
    for index, code in enumerate(kept):
        lookup[code] = index

    names = synthetic_class_names(num_classes)
    colors = tuple(SYNTHETIC_CLASS_COLORS[name] for name in names)
    optical = optical_image(
        reference_optical(ground, seed, _REF_RES),
        grids['optical'],
        ref,
        seed,
        _samples(_OPTICAL_RES),
    )
    sar = sar_image(
        reference_sar(ground, seed, _REF_RES),
        grids['sar'],
        ref,
        seed,
        _samples(_SAR_RES),
    )
    dsm = dsm_image(ground.terrain + ground.object_height, grids['dsm'], ref, seed)
    labels = label_image(
        ground.classes, lookup, grids['mask'], ref, _samples(_OPTICAL_RES)
    )

    common_tags = {
        'SYNTHETIC_SEED': str(seed),
        'SYNTHETIC_SIZE': str(size),
        'SYNTHETIC_VEHICLE_SCALE': str(float(vehicle_scale)),
        'SOFTWARE': 'torchgeo-stars synthetic scene generator',
    }
    jobs: list[tuple[str, NDArray[Any], dict[str, Any], dict[str, Any]]] = [
        (
            'optical',
            optical,
            _profile(grids['optical'], 4, 'uint16', 0),
            {
                'descriptions': ('blue', 'green', 'red', 'nir'),
                'tags': {
                    **common_tags,
                    'ACQUISITION_DATE': _ACQUISITION,
                    'SENSOR': 'synthetic Sentinel-2-like MSI',
                    'REFLECTANCE_SCALE': str(1 / OPTICAL_SCALE),
                },
            },
        ),
        (
            'sar',
            sar,
            _profile(grids['sar'], 2, 'float32', 0.0),
            {
                'descriptions': ('VV', 'VH'),
                'tags': {
                    **common_tags,
                    'SENSOR': 'synthetic Sentinel-1-like C-band GRD',
                    'QUANTITY': 'sigma0, linear power',
                    'EQUIVALENT_NUMBER_OF_LOOKS': str(SAR_LOOKS),
                },
            },
        ),
        (
            'dsm',
            dsm,
            _profile(grids['dsm'], 1, 'float32', DSM_NODATA),
            {
                'descriptions': ('height',),
                'tags': {**common_tags, 'QUANTITY': 'surface height above sea level'},
                'units': 'metre',
            },
        ),
        (
            'mask',
            labels,
            _profile(grids['mask'], 1, 'uint8', _LABEL_NODATA),
            {
                'descriptions': ('class',),
                'tags': {
                    **common_tags,
                    'CLASS_NAMES': ','.join(names),
                    **{f'CLASS_{i}': name for i, name in enumerate(names)},
                },
                'colormap': {
                    **{i: (*c, 255) for i, c in enumerate(colors)},
                    _LABEL_NODATA: (0, 0, 0, 0),
                },
            },
        ),
    ]

    partial: list[tuple[Path, Path]] = []
    try:
        for name, data, profile, extra in jobs:
            final = paths[name]
            final.parent.mkdir(parents=True, exist_ok=True)
            temporary = final.with_name(f'.{final.name}.{uuid.uuid4().hex}.partial')
            partial.append((temporary, final))
            _write(temporary, data, profile, **extra)
        for temporary, final in partial:
            os.replace(temporary, final)
    finally:
        for temporary, _ in partial:
            temporary.unlink(missing_ok=True)

    return SyntheticScene(
        root=root,
        images={name: paths[name] for name in ('optical', 'sar', 'dsm')},
        mask=paths['mask'],
        class_names=names,
        class_colors=colors,
        crs={name: grid.crs for name, grid in grids.items()},
        resolution={name: grid.res for name, grid in grids.items()},
        reference_crs=REFERENCE_CRS,
        reference_bounds=ref.bounds,
        common_bounds=layout.common,
        size=size,
        seed=seed,
    )


def describe_scene(scene: SyntheticScene) -> str:
    """Summarise a written scene: rasters, CRSs, resolutions, class fractions.

    Args:
        scene: a scene returned by :func:`make_synthetic_scene`.

    Returns:
        A multi-line human-readable summary.

    Raises:
        FileNotFoundError: if one of the scene's files is missing.
    """
    lines = [
        f'Synthetic scene in {scene.root} (size {scene.size}, seed {scene.seed}, '
        f'{scene.num_classes} classes)'
    ]
    files = {**scene.images, 'mask': scene.mask}
    for name, path in files.items():
        if not path.exists():
            raise FileNotFoundError(f'{name} raster {path} of the scene is missing')
        with rasterio.open(path) as src:
            rx, ry = src.res
            unit = src.crs.linear_units if src.crs.is_projected else 'degree'
            bands = ', '.join(d or '?' for d in src.descriptions)
            lines.append(
                f'  {name:<8} {path.relative_to(scene.root)}: {src.crs.to_string()}, '
                f'{rx:g} x {ry:g} {unit}, {src.width} x {src.height} px, '
                f'{src.count} x {src.dtypes[0]} ({bands}), nodata {src.nodata:g}'
            )
    with rasterio.open(scene.mask) as src:
        labels = src.read(1)
    counts = np.bincount(labels.ravel(), minlength=256)[: scene.num_classes]
    total = max(int(counts.sum()), 1)
    lines.append(f'  class fractions of {total} labelled pixels:')
    for index, (name, count) in enumerate(zip(scene.class_names, counts, strict=True)):
        lines.append(f'    {index} {name:<15} {100 * count / total:6.2f} %')
    return '\n'.join(lines)
