"""Put a raster without georeferencing on the grid of a reference raster.

Some releases ship a product as a plain image (e.g. ISPRS Potsdam's nDSM
JPEGs, which may come without a world file) beside a GeoTIFF of the same
grid. :func:`vrt_on_grid_of` writes a small GDAL VRT that reads the image's
pixels unchanged and gives them the reference's CRS and transform, so the
image is read by the project's raster classes (pairing by extent, samplers,
``predict-geotiff``) like any GeoTIFF, without copying its pixels.

The VRT is written once into a cache folder, atomically, and reused while
its content would be the same: it records the source's size and
modification time and the reference's grid, so a changed source (or
reference) rewrites it.

.. versionadded:: 0.1
"""

import os
import tempfile
import warnings
import xml.etree.ElementTree as ET

import rasterio
import rasterio.errors

from ..errors import DataError


def _open_header(path: str) -> tuple[int, int, str, str | None, tuple[float, ...]]:
    """Width, height, data type of band 1, CRS (WKT) and GDAL geotransform."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                crs = src.crs.to_wkt() if src.crs is not None else None
                return (
                    src.width,
                    src.height,
                    src.dtypes[0],
                    crs,
                    tuple(src.transform.to_gdal()),
                )
    except rasterio.errors.RasterioIOError as err:
        raise DataError(
            f'cannot read {path} ({err}): re-extract or re-download the file.'
        ) from err


_GDAL_TYPES = {
    'uint8': 'Byte',
    'int8': 'Int8',
    'uint16': 'UInt16',
    'int16': 'Int16',
    'uint32': 'UInt32',
    'int32': 'Int32',
    'float32': 'Float32',
    'float64': 'Float64',
}


def vrt_document(source: str, reference: str, vrt_folder: str) -> str:
    """The VRT giving *source*'s band 1 the grid of *reference*.

    Args:
        source: the image without (or with untrusted) georeferencing.
        reference: a georeferenced raster of the same width and height.
        vrt_folder: the folder the VRT will be in (the source is referenced
            relative to it).

    Returns:
        The VRT's XML.

    Raises:
        DataError: if a file cannot be read, the reference has no CRS, or the
            two differ in size (naming both files).
    """
    width, height, dtype, _, _ = _open_header(source)
    ref_width, ref_height, _, crs, geotransform = _open_header(reference)
    if (width, height) != (ref_width, ref_height):
        raise DataError(
            f'{source} is {width} x {height} pixels but {reference}, whose grid it '
            f'is read on, is {ref_width} x {ref_height}; the two must be the same '
            'tile of the release: re-extract them.'
        )
    if crs is None:
        raise DataError(
            f'{reference} has no CRS, so {source} cannot be placed on its grid; '
            're-extract the georeferenced file of the release.'
        )
    stat = os.stat(source)
    root = ET.Element('VRTDataset', rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, 'SRS', dataAxisToSRSAxisMapping='1,2').text = crs
    ET.SubElement(root, 'GeoTransform').text = ', '.join(
        repr(float(v)) for v in geotransform
    )
    metadata = ET.SubElement(root, 'Metadata')
    for key, value in (
        ('source_size', str(stat.st_size)),
        ('source_mtime_ns', str(stat.st_mtime_ns)),
        ('grid_of', os.path.basename(reference)),
    ):
        ET.SubElement(metadata, 'MDI', key=key).text = value
    band = ET.SubElement(
        root, 'VRTRasterBand', dataType=_GDAL_TYPES.get(dtype, 'Byte'), band='1'
    )
    simple = ET.SubElement(band, 'SimpleSource')
    relative = os.path.relpath(os.path.abspath(source), os.path.abspath(vrt_folder))
    ET.SubElement(simple, 'SourceFilename', relativeToVRT='1').text = relative
    ET.SubElement(simple, 'SourceBand').text = '1'
    rect = {'xOff': '0', 'yOff': '0', 'xSize': str(width), 'ySize': str(height)}
    ET.SubElement(simple, 'SrcRect', rect)
    ET.SubElement(simple, 'DstRect', rect)
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def vrt_on_grid_of(source: str, reference: str, vrt_folder: str) -> str:
    """A VRT of *source* on the grid of *reference*, written once and reused.

    The VRT is ``<vrt_folder>/<source name>.vrt``; it is rewritten
    (atomically: a temporary file renamed over it) only when its content
    would change, i.e. when the source's size or modification time or the
    reference's grid changed.

    Args:
        source: the image without georeferencing (its band 1 is read).
        reference: the georeferenced raster whose CRS and transform it gets.
        vrt_folder: the cache folder (created if missing).

    Returns:
        The VRT's path.

    Raises:
        DataError: if the sizes differ, a file cannot be read or the folder
            cannot be written.
    """
    document = vrt_document(source, reference, vrt_folder)
    stem = os.path.splitext(os.path.basename(source))[0]
    path = os.path.join(vrt_folder, stem + '.vrt')
    try:
        with open(path) as file:
            if file.read() == document:
                return path
    except OSError:
        pass
    try:
        os.makedirs(vrt_folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=vrt_folder, prefix=f'.{stem}.', suffix='.tmp'
        )
        try:
            with os.fdopen(handle, 'w') as file:
                file.write(document)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as err:
        raise DataError(
            f'cannot write {path} ({err}): the folder {vrt_folder} must be '
            f'writable to read {source} on the grid of {reference}.'
        ) from err
    return path
