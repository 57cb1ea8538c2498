"""Ground truth of the synthetic scene, generated once on the reference grid.

A small town (a rotated street grid with blocky buildings along the streets,
gardens, parks, parking lots and industrial halls) sits in farmland (fields,
meadows, bare soil, hedgerows, forest blobs), crossed by two main roads and a
meandering river, with a few lakes and rare vehicles on the roads. Everything is
vectorised numpy on a metric grid; randomness comes from named, seeded streams
so one component can change without reshuffling the others.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Canonical class codes (indices into ``SYNTHETIC_CLASSES``).
IMPERVIOUS, BUILDING, LOW_VEGETATION, TREE, WATER, VEHICLE, BARE_SOIL, CROPLAND = range(
    8
)
NUM_CANONICAL = 8

Float = NDArray[np.float32]
Bool = NDArray[np.bool_]


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent random generator for one named component of the scene.

    Args:
        seed: scene seed.
        name: component name.

    Returns:
        A generator seeded by ``seed`` and the name.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float
) -> Float:
    """Spatially smooth Gaussian noise with zero mean and unit variance.

    White noise filtered by a Gaussian of standard deviation ``sigma`` pixels in
    the Fourier domain (so the field wraps around the edges).

    Args:
        rng: random generator.
        shape: ``(height, width)``.
        sigma: correlation length in pixels.

    Returns:
        The float32 field.
    """
    height, width = shape
    spectrum = np.fft.rfft2(rng.standard_normal(shape, dtype=np.float32))
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :]
    spectrum *= np.exp(np.float32(-2.0 * math.pi**2 * sigma**2) * (fx**2 + fy**2))
    field = np.fft.irfft2(spectrum, s=shape)
    field -= field.mean()
    std = field.std()
    if std > 0:
        field /= std
    return field.astype(np.float32)


@dataclass
class Ground:
    """Ground layers on the reference grid.

    Attributes:
        classes: canonical class code per pixel (dropped classes already merged).
        object_height: height above the terrain in metres.
        terrain: terrain height in metres above sea level.
        shadow: ground pixels in the shadow of a building, tree or vehicle.
        gain: per-pixel brightness factor (varies between vehicles, 1 elsewhere).
    """

    classes: NDArray[np.uint8]
    object_height: Float
    terrain: Float
    shadow: Bool
    gain: Float


@dataclass
class _Lines:
    """A road or river: wiggly band along a straight axis."""

    mask: Bool
    angle: float


def _band(
    rng: np.random.Generator,
    xx: Float,
    yy: Float,
    point: tuple[float, float],
    angle: float,
    width: float,
    amplitude: float,
    wavelength: float,
    extra: Float | None = None,
) -> _Lines:
    """Pixels within ``width / 2`` of a sinusoidally wiggling line."""
    tx, ty = math.cos(angle), math.sin(angle)
    dx, dy = xx - point[0], yy - point[1]
    along = dx * tx + dy * ty
    across = -dx * ty + dy * tx
    phase = rng.uniform(0, 2 * math.pi)
    offset = amplitude * np.sin(2 * math.pi * along / wavelength + phase)
    if extra is not None:
        offset = offset + extra
    return _Lines(np.abs(across - offset) < width / 2, angle)


@dataclass
class _Town:
    """Town layers.

    Classes (255 outside the town), building heights, where garden and park
    trees may grow, parking lots and yards, street direction, grid angle.
    """

    classes: NDArray[np.uint8]
    height: Float
    tree_ok: Bool
    lots: Bool
    direction: Float
    angle: float


def _town(rng: np.random.Generator, xx: Float, yy: Float, urban: Bool) -> _Town:
    """Street grid and block contents of the town."""
    theta = rng.uniform(-0.45, 0.45)
    bu, bv = rng.uniform(95.0, 135.0), rng.uniform(75.0, 115.0)
    street = rng.uniform(9.0, 13.0)
    cos, sin = math.cos(theta), math.sin(theta)
    u = xx * cos + yy * sin + rng.uniform(0, bu)
    v = -xx * sin + yy * cos + rng.uniform(0, bv)
    iu, iv = np.floor(u / bu), np.floor(v / bv)
    lu, lv = u - iu * bu, v - iv * bv
    is_street = (lu < street) | (lv < street)
    direction = np.where(lu < street, theta + math.pi / 2, theta).astype(np.float32)

    # Per-block parameters, looked up by block index.
    iu_i, iv_i = iu.astype(np.int64), iv.astype(np.int64)
    iu_i -= iu_i.min()
    iv_i -= iv_i.min()
    n_v = int(iv_i.max()) + 1
    block = iu_i * n_v + iv_i
    n_blocks = int(block.max()) + 1
    kind = rng.choice(4, size=n_blocks, p=[0.6, 0.12, 0.1, 0.18])  # res/ind/lot/park
    setback = rng.uniform(3.0, 8.0, n_blocks)
    depth = rng.uniform(10.0, 16.0, n_blocks)
    seg_len = rng.uniform(14.0, 30.0, n_blocks)
    gap = np.where(rng.random(n_blocks) < 0.3, 0.0, rng.uniform(4.0, 8.0, n_blocks))
    phase = rng.uniform(0.0, 30.0, n_blocks)
    paved_front = rng.random(n_blocks) < 0.5
    yard = rng.uniform(8.0, 15.0, n_blocks)
    n_seg = math.ceil(max(bu, bv) / 14.0) + 3
    eave = rng.uniform(6.0, 14.0, (n_blocks, 4, n_seg))
    ridge = rng.uniform(1.5, 4.0, (n_blocks, 4, n_seg))
    hall = rng.uniform(7.0, 14.0, n_blocks)

    edges = np.stack([lu - street, bu - lu, lv - street, bv - lv])
    nearest = edges.argmin(axis=0)
    dist = np.take_along_axis(edges, nearest[None], axis=0)[0]
    along = np.where(nearest < 2, lv, lu) + phase[block]
    seg = np.minimum(np.floor(along / seg_len[block]), n_seg - 1).astype(np.int64)
    in_seg = along - seg * seg_len[block]

    k = kind[block]
    sb, dp = setback[block], depth[block]
    residential = (k == 0) & (dist >= sb) & (dist < sb + dp) & (in_seg >= gap[block])
    roof = 1.0 - np.abs(2.0 * (dist - sb) / dp - 1.0)
    res_height = eave[block, nearest, seg] + ridge[block, nearest, seg] * roof
    industrial = (k == 1) & (dist >= yard[block])
    building = (residential | industrial) & urban & ~is_street
    height = np.where(building, np.where(k == 0, res_height, hall[block]), 0.0)

    classes = np.full(xx.shape, 255, dtype=np.uint8)
    front = (k == 0) & (dist < sb)
    lot = (k == 2) | ((k == 1) & ~industrial)
    paved = lot | (front & paved_front[block])
    classes[urban] = LOW_VEGETATION
    classes[urban & paved] = IMPERVIOUS
    classes[building] = BUILDING
    classes[urban & is_street] = IMPERVIOUS
    greenery = urban & ~is_street & ~building & ~paved
    tree_ok = greenery & ((k == 3) | ((k == 0) & (dist >= sb + dp)))
    return _Town(
        classes,
        height.astype(np.float32),
        tree_ok,
        urban & lot & ~is_street,
        direction,
        theta,
    )


def _countryside(
    seed: int, xx: Float, yy: Float, rural: Bool, shape: tuple[int, int], res: float
) -> NDArray[np.uint8]:
    """Fields, meadows, bare soil, hedgerows and forest outside the town."""
    rng = stream(seed, 'fields')
    theta = rng.uniform(-0.8, 0.8)
    pu, pv = rng.uniform(150.0, 300.0), rng.uniform(100.0, 220.0)
    cos, sin = math.cos(theta), math.sin(theta)
    u = xx * cos + yy * sin + rng.uniform(0, pu)
    v = -xx * sin + yy * cos + rng.uniform(0, pv)
    iu, iv = np.floor(u / pu), np.floor(v / pv)
    lu, lv = u - iu * pu, v - iv * pv
    iu_i = (iu - iu.min()).astype(np.int64)
    iv_i = (iv - iv.min()).astype(np.int64)
    parcel = iu_i * (int(iv_i.max()) + 1) + iv_i
    n_parcels = int(parcel.max()) + 1
    kinds = np.array([LOW_VEGETATION, CROPLAND, BARE_SOIL], dtype=np.uint8)
    use = rng.choice(kinds, size=n_parcels, p=[0.45, 0.37, 0.18])
    hedge_u = rng.random(n_parcels) < 0.35
    hedge_v = rng.random(n_parcels) < 0.35
    forest = np.zeros(shape, dtype=bool)
    if rural.any():
        forest_field = smooth_noise(stream(seed, 'forest'), shape, 220.0 / res)
        forest = rural & (forest_field > np.quantile(forest_field[rural], 0.75))
        # Even a small scene shows every land use: the open parcels with the
        # most pixels near the centre get one kind each.
        rows, cols = shape
        near = np.zeros(shape, dtype=bool)
        near[rows // 4 : rows - rows // 4, cols // 4 : cols - cols // 4] = True
        open_land = rural & ~forest & near
        counts = np.bincount(parcel[open_land], minlength=n_parcels)
        largest = np.argsort(counts, kind='stable')[::-1][: len(kinds)]
        use[largest] = rng.permutation(kinds)[: len(largest)]
    classes = np.where(rural, use[parcel], 255).astype(np.uint8)
    hedge = ((lu < 11.0) & hedge_u[parcel]) | ((lv < 11.0) & hedge_v[parcel])
    classes[rural & (hedge | forest)] = TREE
    return classes


def _vehicles(
    seed: int,
    classes: NDArray[np.uint8],
    height: Float,
    gain: Float,
    lots: Bool,
    direction: Float,
    res: float,
    scale: float,
) -> None:
    """Paint rare vehicles (rotated rectangles) onto roads and lots, in place.

    ``scale`` multiplies the footprint (cars of 11-18 m x 7 m at 1) and divides
    the number of vehicles, so the class's share of the scene grows about in
    proportion to ``scale`` (less where large footprints overhang the paving).
    """
    rng = stream(seed, 'vehicles')
    rows, cols = classes.shape
    candidates = np.flatnonzero(classes == IMPERVIOUS)
    if candidates.size == 0:
        return
    weights = np.where(lots.ravel()[candidates], 5.0, 1.0)
    length, width = rng.uniform(11.0, 18.0), 7.0
    count = round(0.005 * classes.size * res**2 / (length * width * scale))
    length, width = length * scale, width * scale
    count = min(count, candidates.size)
    chosen = rng.choice(
        candidates, size=count, replace=False, p=weights / weights.sum()
    )
    r0, c0 = np.divmod(chosen, cols)
    angle = direction.ravel()[chosen] + rng.choice([0.0, math.pi], size=count)
    lengths = rng.uniform(0.8, 1.2, count) * length
    jx, jy = rng.uniform(-0.5, 0.5, (2, count))
    reach = math.ceil(length / res / 2) + 1
    offsets = np.arange(-reach, reach + 1)
    dy, dx = (a.ravel() for a in np.meshgrid(offsets, offsets, indexing='ij'))
    rel_x = (dx[None, :] - jx[:, None]) * res
    rel_y = (dy[None, :] - jy[:, None]) * res
    ca, sa = np.cos(angle)[:, None], np.sin(angle)[:, None]
    inside = (np.abs(rel_x * ca + rel_y * sa) <= lengths[:, None] / 2) & (
        np.abs(-rel_x * sa + rel_y * ca) <= width / 2
    )
    rr = r0[:, None] + dy[None, :]
    cc = c0[:, None] + dx[None, :]
    inside &= (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    heights = np.broadcast_to(rng.uniform(1.6, 3.8, count)[:, None], inside.shape)
    gains = np.broadcast_to(rng.uniform(0.5, 1.9, count)[:, None], inside.shape)
    rr, cc = rr[inside], cc[inside]
    ok = classes[rr, cc] == IMPERVIOUS
    rr, cc = rr[ok], cc[ok]
    classes[rr, cc] = VEHICLE
    height[rr, cc] = heights[inside][ok]
    gain[rr, cc] = gains[inside][ok]


def cast_shadows(height: Float, res: float, azimuth: float, elevation: float) -> Bool:
    """Pixels shaded from the sun by higher pixels (ray marching).

    Args:
        height: surface height in metres.
        res: pixel size in metres.
        azimuth: sun azimuth in degrees clockwise from north (image rows go south).
        elevation: sun elevation in degrees.

    Returns:
        Boolean shadow mask.
    """
    tan_e = math.tan(math.radians(elevation))
    relief = float(height.max() - height.min())
    steps = math.ceil(relief / tan_e / res) + 1
    dx = math.sin(math.radians(azimuth))
    dy = -math.cos(math.radians(azimuth))
    rows, cols = height.shape
    padded = np.pad(height, steps + 1, mode='edge')
    shadow = np.zeros(height.shape, dtype=bool)
    for k in range(1, steps + 1):
        oy, ox = round(k * dy), round(k * dx)
        r0, c0 = steps + 1 + oy, steps + 1 + ox
        ahead = padded[r0 : r0 + rows, c0 : c0 + cols]
        shadow |= ahead - height > math.hypot(oy, ox) * res * tan_e
    return shadow


def build_ground(
    shape: tuple[int, int],
    res: float,
    seed: int,
    keep: frozenset[int],
    *,
    sun_azimuth: float = 150.0,
    sun_elevation: float = 35.0,
    vehicle_scale: float = 1.0,
) -> Ground:
    """Generate the scene's ground layers on a metric grid.

    Args:
        shape: ``(rows, cols)`` of the reference grid (rows run south).
        res: its pixel size in metres.
        seed: scene seed.
        keep: canonical codes to keep; others merge (see ``MERGE_INTO``).
        sun_azimuth: sun azimuth in degrees, for shadows.
        sun_elevation: sun elevation in degrees, for shadows.
        vehicle_scale: factor on the vehicles' length and width.

    Returns:
        The ground layers.
    """
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32) * np.float32(res)
    extent = min(rows, cols) * res

    # Town: a compact blob around a random centre.
    rng = stream(seed, 'town')
    cy, cx = rng.uniform(0.35, 0.65, 2) * (rows * res, cols * res)
    radial = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.5 * extent) ** 2
    blob = smooth_noise(stream(seed, 'town-shape'), shape, 0.08 * extent / res)
    town_field = blob - 2.0 * radial
    urban = town_field >= np.quantile(town_field, 1.0 - rng.uniform(0.33, 0.43))
    town = _town(rng, xx, yy, urban)
    height, lots, direction = town.height, town.lots, town.direction
    classes = np.where(
        urban, town.classes, _countryside(seed, xx, yy, ~urban, shape, res)
    )

    # Garden and park trees.
    crowns = smooth_noise(stream(seed, 'crowns'), shape, 6.0 / res)
    classes[town.tree_ok & (crowns > 0.5)] = TREE

    # River and lakes.
    rng = stream(seed, 'water')
    centre = (
        cx + rng.uniform(-0.2, 0.2) * extent,
        cy + rng.uniform(-0.2, 0.2) * extent,
    )
    meander = smooth_noise(stream(seed, 'meander'), shape, 150.0 / res) * 25.0
    river = _band(
        rng,
        xx,
        yy,
        centre,
        rng.uniform(0, math.pi),
        rng.uniform(45.0, 70.0),
        rng.uniform(60.0, 140.0),
        rng.uniform(700.0, 1600.0),
        meander,
    )
    lake_field = smooth_noise(stream(seed, 'lakes'), shape, 60.0 / res)
    lakes = ~urban & (lake_field > np.quantile(lake_field, 0.985))
    water = river.mask | lakes
    classes[water] = WATER
    height[water] = 0.0

    # Main roads across the whole scene (bridges over the river).
    rng = stream(seed, 'roads')
    theta = town.angle
    for k in range(2):
        road = _band(
            rng,
            xx,
            yy,
            (
                cx + rng.uniform(-0.15, 0.15) * extent,
                cy + rng.uniform(-0.15, 0.15) * extent,
            ),
            theta + k * math.pi / 2 + rng.uniform(-0.12, 0.12),
            rng.uniform(12.0, 18.0),
            rng.uniform(10.0, 40.0),
            rng.uniform(900.0, 2000.0),
        )
        classes[road.mask] = IMPERVIOUS
        height[road.mask] = 0.0
        direction[road.mask] = road.angle
        lots &= ~road.mask

    gain = np.ones(shape, dtype=np.float32)
    _vehicles(seed, classes, height, gain, lots, direction, res, vehicle_scale)

    # Merge classes the caller dropped.
    for code in range(NUM_CANONICAL):
        if code not in keep:
            classes[classes == code] = MERGE_INTO[code]

    canopy = (
        12.0
        + 4.0 * smooth_noise(stream(seed, 'canopy'), shape, 20.0 / res)
        + 2.0 * smooth_noise(stream(seed, 'canopy-fine'), shape, 4.0 / res)
    )
    is_tree = classes == TREE
    height[is_tree] = np.clip(canopy[is_tree], 4.0, 28.0)
    height[~np.isin(classes, [BUILDING, TREE, VEHICLE])] = 0.0

    rng = stream(seed, 'terrain')
    slope_dir = rng.uniform(0, 2 * math.pi)
    slope = rng.uniform(0.1, 0.3) / 1000.0
    terrain = (
        rng.uniform(150.0, 250.0)
        + slope * (xx * math.cos(slope_dir) + yy * math.sin(slope_dir))
        + 0.4 * smooth_noise(stream(seed, 'hills'), shape, 0.2 * extent / res)
    ).astype(np.float32)

    shadow = cast_shadows(height, res, sun_azimuth, sun_elevation)
    shadow &= (height < 0.5) & (classes != WATER)
    return Ground(classes, height, terrain, shadow, gain)


MERGE_INTO = {
    IMPERVIOUS: IMPERVIOUS,
    BUILDING: BUILDING,
    LOW_VEGETATION: LOW_VEGETATION,
    TREE: LOW_VEGETATION,
    WATER: LOW_VEGETATION,
    VEHICLE: VEHICLE,
    BARE_SOIL: LOW_VEGETATION,
    CROPLAND: LOW_VEGETATION,
}
"""Where a dropped canonical class goes (only the last four can be dropped)."""
