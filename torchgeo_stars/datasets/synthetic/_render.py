"""Sensor models of the synthetic scene: what each modality sees of the ground.

Each modality sees the classes through its own *appearance* table, chosen so
that some classes are told apart by one modality only:

- building and impervious ground share optical spectrum and SAR backscatter;
  only the DSM (height) separates them; likewise tree and low vegetation;
- water and shadowed ground share the same dark optical spectrum and lie at
  terrain height; only SAR (water: very low backscatter) separates them;
- cropland looks like low vegetation optically and in height; only SAR
  (stronger backscatter) separates them;
- bare soil shares SAR and height with impervious ground; only its optical
  spectrum separates them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._grids import Grid, area_mean, majority, subsample_indices
from ._layout import Ground, smooth_noise, stream

Float = NDArray[np.float32]

# Optical appearances and their reflectance (blue, green, red, nir).
_PAVED, _GREEN, _DARK, _SOIL, _METAL = range(5)
_SPECTRA = np.array(
    [
        [0.10, 0.11, 0.12, 0.15],
        [0.03, 0.07, 0.04, 0.33],
        [0.04, 0.04, 0.03, 0.02],
        [0.07, 0.10, 0.14, 0.21],
        [0.16, 0.16, 0.18, 0.20],
    ],
    dtype=np.float32,
)
# Canonical class -> optical appearance (see _layout class codes).
_OPTICAL_LOOK = np.array(
    [_PAVED, _PAVED, _GREEN, _GREEN, _DARK, _METAL, _SOIL, _GREEN], dtype=np.intp
)

# SAR appearances and their sigma0 (VV, VH), linear.
_HARD, _VEG, _CROP, _CALM, _STEEL = range(5)
_SIGMA0 = np.array(
    [[0.10, 0.016], [0.05, 0.012], [0.13, 0.032], [0.006, 0.0012], [0.6, 0.06]],
    dtype=np.float32,
)
_SAR_LOOK = np.array(
    [_HARD, _HARD, _VEG, _VEG, _CALM, _STEEL, _HARD, _CROP], dtype=np.intp
)

# Ties between classes in a label pixel go to the rarer, smaller objects.
_TIE_PRIORITY = np.array([0.1, 0.6, 0.05, 0.5, 0.4, 0.9, 0.2, 0.15])

OPTICAL_SCALE = 10000
"""Reflectance is stored as ``round(reflectance * OPTICAL_SCALE)`` in uint16."""
DSM_NODATA = -9999.0
SAR_LOOKS = 4.4
"""Equivalent number of looks of the gamma speckle (Sentinel-1 GRD-like)."""


def reference_optical(ground: Ground, seed: int, res: float) -> Float:
    """Top-of-canopy reflectance of every reference pixel.

    Args:
        ground: ground layers.
        seed: scene seed.
        res: reference pixel size in metres.

    Returns:
        ``(4, H, W)`` float32 reflectance (blue, green, red, nir).
    """
    shape = ground.classes.shape
    look = _OPTICAL_LOOK[ground.classes]
    look[ground.shadow] = _DARK
    refl = np.moveaxis(_SPECTRA[look], -1, 0)
    texture = smooth_noise(stream(seed, 'optical-texture'), shape, 6.0 / res)
    refl *= (1.0 + 0.12 * texture) * ground.gain
    vigour = smooth_noise(stream(seed, 'vigour'), shape, 10.0 / res)
    green = look == _GREEN
    refl[2] *= np.where(green, 1.0 - 0.2 * vigour, 1.0)
    refl[3] *= np.where(green, 1.0 + 0.12 * vigour, 1.0)
    haze = smooth_noise(stream(seed, 'haze'), shape, 800.0 / res)
    scatter = np.array([1.0, 0.7, 0.45, 0.2], dtype=np.float32)[:, None, None]
    refl += 0.01 * scatter * (1.0 + 0.03 * haze)
    return np.clip(refl, 0.0, None)


def reference_sar(ground: Ground, seed: int, res: float) -> Float:
    """Noise-free sigma0 (VV, VH) of every reference pixel.

    Args:
        ground: ground layers.
        seed: scene seed.
        res: reference pixel size in metres.

    Returns:
        ``(2, H, W)`` float32 linear backscatter.
    """
    shape = ground.classes.shape
    sigma = np.moveaxis(_SIGMA0[_SAR_LOOK[ground.classes]], -1, 0)
    moisture = smooth_noise(stream(seed, 'sar-texture'), shape, 15.0 / res)
    sigma *= np.exp(0.2 * moisture)
    return sigma


def optical_image(
    reflectance: Float, grid: Grid, ref: Grid, seed: int, samples: int
) -> NDArray[np.uint16]:
    """Optical raster: pixel-averaged reflectance, sensor noise, nodata wedge.

    Args:
        reflectance: ``(4, H, W)`` reference reflectance.
        grid: optical grid.
        ref: reference grid.
        seed: scene seed.
        samples: sample points per pixel side.

    Returns:
        ``(4, height, width)`` uint16 scaled reflectance, 0 where no data (a
        corner outside the imaged swath).
    """
    index = subsample_indices(grid, ref, samples)
    values = area_mean(reflectance, index)
    rng = stream(seed, 'optical-noise')
    values *= 1.0 + 0.01 * rng.standard_normal(values.shape, dtype=np.float32)
    values += 0.002 * rng.standard_normal(values.shape, dtype=np.float32)
    scaled = np.clip(np.rint(values * OPTICAL_SCALE), 1, OPTICAL_SCALE)
    out = scaled.astype(np.uint16)
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    outside = (grid.width - 1 - cols) + rows < 0.12 * min(grid.height, grid.width)
    out[:, outside] = 0
    return out


def sar_image(sigma: Float, grid: Grid, ref: Grid, seed: int, samples: int) -> Float:
    """SAR raster: pixel-averaged sigma0, noise floor, incidence ramp, speckle.

    Args:
        sigma: ``(2, H, W)`` reference sigma0.
        grid: SAR grid.
        ref: reference grid.
        seed: scene seed.
        samples: sample points per pixel side.

    Returns:
        ``(2, height, width)`` float32 linear backscatter (VV, VH), all positive.
    """
    index = subsample_indices(grid, ref, samples)
    values = area_mean(sigma, index)
    values += np.array([0.002, 0.0006], dtype=np.float32)[:, None, None]
    ramp_db = np.linspace(0.15, -0.15, grid.width, dtype=np.float32)
    values *= np.float32(10.0) ** (ramp_db / 10.0)
    rng = stream(seed, 'speckle')
    speckle = rng.gamma(SAR_LOOKS, 1.0 / SAR_LOOKS, values.shape).astype(np.float32)
    noisy: Float = np.maximum(values * speckle, np.float32(1e-6))
    return noisy


def dsm_image(height: Float, grid: Grid, ref: Grid, seed: int) -> Float:
    """DSM raster: surface height at pixel centres, noise and voids.

    Args:
        height: ``(H, W)`` reference surface height (terrain + objects).
        grid: DSM grid.
        ref: reference grid.
        seed: scene seed.

    Returns:
        ``(1, height, width)`` float32 metres, ``DSM_NODATA`` in voids.
    """
    index = subsample_indices(grid, ref, 1)
    values = area_mean(height[None], index)
    rng = stream(seed, 'dsm-noise')
    values += 0.2 * rng.standard_normal(values.shape, dtype=np.float32)
    voids = smooth_noise(stream(seed, 'dsm-voids'), (grid.height, grid.width), 2.0)
    values[0][voids > np.quantile(voids, 0.985)] = DSM_NODATA
    return values


def label_image(
    classes: NDArray[np.uint8],
    lookup: NDArray[np.uint8],
    grid: Grid,
    ref: Grid,
    samples: int,
) -> NDArray[np.uint8]:
    """Label raster: majority class of each pixel's sample points.

    Args:
        classes: ``(H, W)`` canonical class codes.
        lookup: canonical code -> output class index.
        grid: label grid.
        ref: reference grid.
        samples: sample points per pixel side.

    Returns:
        ``(1, height, width)`` uint8 class indices.
    """
    index = subsample_indices(grid, ref, samples)
    return lookup[majority(classes, index, _TIE_PRIORITY)][None]
