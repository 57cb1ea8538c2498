"""The benchmark datasets by name: splits, label decoding, keys, errors, plot."""

import os
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import rasterio.errors
import torch
from PIL import Image
from torchgeo.datasets import Potsdam2D, Vaihingen2D
from torchgeo.datasets.utils import Sample

from torchgeo_stars.datasets import (
    WHUOPTSAR,
    EarthMiss,
    PairedDataset,
    Potsdam,
    TileDataset,
    Vaihingen,
    decode_colours,
    decode_values,
)
from torchgeo_stars.datasets.benchmark import BenchmarkDataset
from torchgeo_stars.datasets.keys import (
    AVAILABLE,
    BOUNDS,
    MASK,
    PREDICTION,
    TRANSFORM,
    image_key,
)
from torchgeo_stars.errors import ConfigurationError, DataError
from torchgeo_stars.losses.segmentation import SegmentationLoss

from .benchmark_fixtures import (
    IGNORE,
    copy_fixture,
    expected_classes,
    generator,
    root_of,
)

ALL = [Potsdam, Vaihingen, WHUOPTSAR, EarthMiss]

#: The authors' WHU-OPT-SAR test tiles (their division file).
WHU_TEST = {
    'NH49E001014', 'NH49E001017', 'NH49E002012', 'NH49E002016', 'NH49E003014',
    'NH49E003024', 'NH49E004011', 'NH49E005011', 'NH49E005019', 'NH49E006019',
    'NH49E007014', 'NH49E008013', 'NH49E009017', 'NH49E010020', 'NH49E011024',
    'NH49E012020', 'NH49E013010', 'NH50E007002', 'NH50E011005', 'NH50E014003',
}  # fmt: skip

EARTHMISS_CITIES = {
    'train': {
        'America-Eugene', 'America-Louisville', 'French-Paris', 'Morocco-Casablanca',
        'Nanjing', 'Netherlands-Rotterdam', 'Singapore',
    },
    'val': {'Australia-PortHedland', 'America-Pake', 'Russian-Engels'},
    'test': {'America-NewYork', 'Japan-Hakodate', 'Peru-Callao'},
}  # fmt: skip


def whole_tiles(dataset: BenchmarkDataset) -> list[tuple[str, Sample]]:
    """Every tile of a dataset, read whole, with its name."""
    if isinstance(dataset, TileDataset):
        return [(tile, dataset[i]) for i, tile in enumerate(dataset.tiles)]
    assert isinstance(dataset, Potsdam)
    out = []
    for tile in dataset.tiles:
        path = os.path.join(dataset.root, '4_Ortho_RGBIR', f'{tile}_RGBIR.tif')
        with rasterio.open(path) as src:
            b = src.bounds
        res = dataset.res[0]
        out.append((tile, dataset[b.left : b.right : res, b.bottom : b.top : res]))
    return out


# Splits -----------------------------------------------------------------------


def test_potsdam_splits_are_torchgeos_with_validation_held_out() -> None:
    train, val, test = (Potsdam.split_tiles(s) for s in ('train', 'val', 'test'))
    assert set(train) | set(val) == set(Potsdam2D.splits['train'])
    assert not set(train) & set(val)
    assert len(val) == 4
    assert test == Potsdam2D.splits['test']
    dataset = Potsdam(root_of(Potsdam), 'val')
    files = {Path(f).name for f in dataset.modality_datasets['optical'].index.filepath}
    assert files == {f'{tile}_RGBIR.tif' for tile in val}
    dsm = {Path(f).name for f in dataset.modality_datasets['dsm'].index.filepath}
    assert dsm == {
        'dsm_potsdam_{:0>2}_{:0>2}.tif'.format(*t.split('_')[2:]) for t in val
    }


def test_vaihingen_splits_are_torchgeos_with_validation_held_out() -> None:
    official = {
        s: [n.removesuffix('.tif') for n in names]
        for s, names in Vaihingen2D.splits.items()
    }
    dataset = {s: Vaihingen(root_of(Vaihingen), s) for s in ('train', 'val', 'test')}
    assert set(dataset['train'].tiles) | set(dataset['val'].tiles) == set(
        official['train']
    )
    assert not set(dataset['train'].tiles) & set(dataset['val'].tiles)
    assert dataset['val'].tiles
    assert dataset['test'].tiles == official['test']
    assert len(dataset['test']) == 17


def test_whu_opt_sar_split_is_the_authors_division() -> None:
    split = {
        s: WHUOPTSAR(root_of(WHUOPTSAR), s).tiles for s in ('train', 'val', 'test')
    }
    assert set(split['test']) == WHU_TEST
    train_val = set(split['train']) | set(split['val'])
    assert not train_val & WHU_TEST
    assert not set(split['train']) & set(split['val'])
    assert len(train_val) == 80
    assert len(split['val']) == 10
    assert train_val == set(generator('whu_opt_sar').TRAIN)


def test_earthmiss_split_is_by_city() -> None:
    for split, cities in EARTHMISS_CITIES.items():
        dataset = EarthMiss(root_of(EarthMiss), split)
        assert {t.split('/')[0] for t in dataset.tiles} == cities
        assert len(dataset) == 2 * len(cities)


@pytest.mark.parametrize('cls', ALL)
def test_unknown_split_and_modalities_are_configuration_errors(
    cls: type[BenchmarkDataset],
) -> None:
    with pytest.raises(ConfigurationError, match='split must be one of'):
        cls(root_of(cls), 'validation')  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match='subset of'):
        cls(root_of(cls), 'test', modalities=['hyperspectral'])  # type: ignore[call-arg]


# Labels -----------------------------------------------------------------------


@pytest.mark.parametrize('cls', ALL)
def test_labels_decode_to_the_exact_classes(cls: type[BenchmarkDataset]) -> None:
    dataset = cls(root_of(cls), 'test')  # type: ignore[call-arg]
    tiles = whole_tiles(dataset)
    assert len(tiles) == len(dataset.tiles)
    seen: set[int] = set()
    for tile, sample in tiles:
        expected = expected_classes(cls, tile)
        np.testing.assert_array_equal(sample[MASK].numpy(), expected, err_msg=tile)
        assert sample[MASK].dtype == torch.int64
        classes = set(np.unique(expected)) - {IGNORE}
        assert len(classes) == 2
        seen |= classes
    # Across the split, several classes of the release occur.
    assert len(seen) >= 3
    assert max(seen) < len(dataset.classes)


def test_potsdam_no_boundary_labels_ignore_the_black_boundaries() -> None:
    dataset = Potsdam(root_of(Potsdam), 'test', labels='no_boundary')
    for tile, sample in whole_tiles(dataset):
        expected = expected_classes(Potsdam, tile)
        expected[:, 11:13] = IGNORE
        np.testing.assert_array_equal(sample[MASK].numpy(), expected)


@pytest.mark.parametrize('cls', ALL)
def test_modalities_are_paired_pixel_for_pixel(cls: type[BenchmarkDataset]) -> None:
    # The fixtures write each modality as a function of the class at that pixel.
    dataset = cls(root_of(cls), 'test')  # type: ignore[call-arg]
    for tile, sample in whole_tiles(dataset):
        optical = sample[image_key('optical')]
        classes = torch.from_numpy(expected_classes(cls, tile))
        labelled = classes != IGNORE
        step = 30 if cls in (WHUOPTSAR, EarthMiss) else 40
        for band in range(optical.shape[0]):
            assert torch.equal(optical[band][labelled], classes[labelled] * step + band)
        if cls is EarthMiss:
            index = {f'{c}/{n}': i for c, n, i in generator('earthmiss').images()}
            assert torch.all(sample[image_key('sar')] == index[tile])
        elif cls is WHUOPTSAR:
            sar = sample[image_key('sar')][0]
            assert torch.equal(sar[labelled], 200.0 - classes[labelled] * 20)
        else:
            offset = 0.5 if cls is Potsdam else 0.25
            dsm = sample[image_key('dsm')][0]
            assert torch.equal(dsm[labelled], classes[labelled] * 10.0 + offset)


@pytest.mark.parametrize('cls', [Potsdam, WHUOPTSAR, EarthMiss])
def test_ignored_pixels_never_reach_the_loss(cls: type[BenchmarkDataset]) -> None:
    # Potsdam's eroded labels, WHU-OPT-SAR's background and EarthMiss's 0.
    options = {'labels': 'no_boundary'} if cls is Potsdam else {}
    dataset = cls(root_of(cls), 'test', modalities=['optical'], **options)  # type: ignore[call-arg]
    loss = SegmentationLoss(ignore_index=dataset.ignore_index)
    _, sample = whole_tiles(dataset)[0]
    target = sample[MASK][None]
    assert set(np.unique(target.numpy()).tolist()) <= set(
        range(len(dataset.classes))
    ) | {IGNORE}
    ignored = target[:, None].expand(1, len(dataset.classes), *target.shape[1:])
    ignored = ignored == IGNORE
    assert ignored.any()
    assert not ignored.all()
    generator_ = torch.Generator().manual_seed(0)
    logits = torch.randn(ignored.shape, generator=generator_)
    changed = logits.clone()
    changed[ignored] = 1e4 * torch.randn(int(ignored.sum()), generator=generator_)
    assert torch.equal(loss(logits, target), loss(changed, target))
    changed[~ignored] += torch.randn(int((~ignored).sum()), generator=generator_)
    assert not torch.equal(loss(logits, target), loss(changed, target))


def test_colours_outside_the_colour_map_are_ignored() -> None:
    # Vaihingen's labels hold only class colours; check the other colours here.
    colours = np.array((*Vaihingen.colors, (0, 0, 0), (255, 0, 255)), dtype=np.uint8)
    codes = np.arange(len(colours)).reshape(2, 4)
    rgb = np.moveaxis(colours[codes], -1, 0)
    decoded = decode_colours(rgb, Vaihingen.colors, IGNORE)
    np.testing.assert_array_equal(decoded, [[0, 1, 2, 3], [4, 5, IGNORE, IGNORE]])


def test_label_codes_outside_the_encoding_are_ignored() -> None:
    values = np.array([[0, 10, 20, 70], [15, 80, 255, 40]], dtype=np.uint8)
    assert WHUOPTSAR.label_values is not None
    decoded = decode_values(values, WHUOPTSAR.label_values, IGNORE)
    np.testing.assert_array_equal(
        decoded, [[IGNORE, 0, 1, 6], [IGNORE, IGNORE, IGNORE, 3]]
    )


# Keys and bands ---------------------------------------------------------------


@pytest.mark.parametrize('cls', ALL)
def test_samples_carry_the_project_keys_and_the_release_bands(
    cls: type[BenchmarkDataset],
) -> None:
    dataset = cls(root_of(cls), 'train')  # type: ignore[call-arg]
    _, sample = whole_tiles(dataset)[0]
    modalities = list(cls.select_modalities(None))
    expected = {image_key(m) for m in modalities} | {MASK, AVAILABLE}
    if cls is Potsdam:
        expected |= {BOUNDS, TRANSFORM}
        assert isinstance(dataset, PairedDataset)
    else:
        assert isinstance(dataset, TileDataset)
    assert set(sample) == expected
    assert dataset.modalities == tuple(modalities)
    for name in modalities:
        bands = cls.modality_bands[name]
        image = sample[image_key(name)]
        assert image.dtype == torch.float32
        assert image.shape == (len(bands), *sample[MASK].shape)
    assert sample[AVAILABLE].dtype == torch.bool
    assert sample[AVAILABLE].tolist() == [True] * len(modalities)
    optional = {'ndsm'} if cls is Potsdam else set()
    assert cls.num_bands_of() == {
        m: len(b) for m, b in cls.modality_bands.items() if m not in optional
    }


@pytest.mark.parametrize('cls', ALL)
def test_a_subset_of_modalities_keeps_the_declared_order(
    cls: type[BenchmarkDataset],
) -> None:
    declared = list(cls.select_modalities(None))
    dataset = cls(root_of(cls), 'test', modalities=declared[::-1])  # type: ignore[call-arg]
    assert list(dataset.modalities) == declared
    only = cls(root_of(cls), 'test', modalities=[declared[1]])  # type: ignore[call-arg]
    _, sample = whole_tiles(only)[0]
    assert image_key(declared[0]) not in sample
    assert image_key(declared[1]) in sample
    assert sample[AVAILABLE].shape == (1,)


# Missing files ----------------------------------------------------------------


@pytest.mark.parametrize('cls', ALL)
def test_a_missing_root_names_the_root_the_layout_and_the_source(
    cls: type[BenchmarkDataset], tmp_path: Path
) -> None:
    root = tmp_path / 'nowhere'
    with pytest.raises(DataError) as info:
        cls(root, 'train')  # type: ignore[call-arg]
    message = str(info.value)
    assert str(root) in message
    assert cls.url in message
    first = cls.file_patterns['optical']
    assert isinstance(first, str)
    assert first.split('{')[0].rstrip('/') in message
    assert '\n' not in message


@pytest.mark.parametrize(
    ('cls', 'split', 'relative'),
    [
        (Potsdam, 'test', '1_DSM/dsm_potsdam_02_13.tif'),
        (Potsdam, 'train', 'top_potsdam_7_9_label.tif'),
        (Potsdam, 'val', '4_Ortho_RGBIR/top_potsdam_2_11_RGBIR.tif'),
        (Vaihingen, 'test', 'dsm/dsm_09cm_matching_area6.tif'),
        (Vaihingen, 'train', 'top_mosaic_09cm_area1.tif'),
        (WHUOPTSAR, 'test', 'sar/NH50E014003.tif'),
        (WHUOPTSAR, 'test', 'lbl/NH49E001014.tif'),
        (EarthMiss, 'val', 'America-Pake/images/SAR/America-Pake_6_SAR.tif'),
    ],
)
def test_a_missing_file_of_the_split_is_named(
    cls: type[BenchmarkDataset], split: str, relative: str, tmp_path: Path
) -> None:
    root = copy_fixture(cls, tmp_path)
    (root / relative).unlink()
    with pytest.raises(
        DataError, match=f'1 file\\(s\\) of the {split!r} split'
    ) as info:
        cls(root, split)  # type: ignore[call-arg]
    assert relative in str(info.value)
    assert cls.url in str(info.value)


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    for path in (root / '1_DSM').iterdir():
        path.unlink()
    (root / '1_DSM').rmdir()
    with pytest.raises(DataError, match=r'folder\(s\) 1_DSM/ missing') as info:
        Potsdam(root, 'train')
    assert 'and 15 more' in str(info.value)
    # Without the DSM modality the folder is not needed.
    assert len(Potsdam(root, 'train', modalities=['optical']).tiles) == 20


def test_an_earthmiss_mask_may_be_png_and_its_absence_names_both(
    tmp_path: Path,
) -> None:
    root = copy_fixture(EarthMiss, tmp_path)
    masks = root / 'Peru-Callao' / 'masks'
    assert {p.suffix for p in masks.iterdir()} == {'.tif', '.png'}
    (masks / 'Peru-Callao_6_mask.png').unlink()
    with pytest.raises(DataError) as info:
        EarthMiss(root, 'test')
    assert 'Peru-Callao/masks/Peru-Callao_6_mask.tif or ' in str(info.value)
    assert 'Peru-Callao/masks/Peru-Callao_6_mask.png' in str(info.value)


def test_a_missing_earthmiss_city_is_named(tmp_path: Path) -> None:
    root = copy_fixture(EarthMiss, tmp_path)
    (root / 'Japan-Hakodate').rename(tmp_path / 'elsewhere')
    with pytest.raises(DataError, match="city 'Japan-Hakodate'"):
        EarthMiss(root, 'test')
    assert len(EarthMiss(root, 'train')) == 14


def test_an_incomplete_whu_opt_sar_copy_is_an_error(tmp_path: Path) -> None:
    root = copy_fixture(WHUOPTSAR, tmp_path)
    (root / 'optical' / 'NH49E001030.tif').unlink()
    with pytest.raises(DataError, match='79 training tiles'):
        WHUOPTSAR(root, 'train')
    # The test split is the authors' list and stays readable.
    assert len(WHUOPTSAR(root, 'test')) == 20


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    root = copy_fixture(WHUOPTSAR, tmp_path)
    path = root / 'sar' / 'NH49E001014.tif'
    path.write_bytes(path.read_bytes()[:100])
    dataset = WHUOPTSAR(root, 'test')
    with pytest.raises(DataError, match=r'sar/NH49E001014\.tif') as info:
        dataset[dataset.tiles.index('NH49E001014')]
    assert 'corrupt' in str(info.value)


def test_potsdam_labels_must_be_full_or_no_boundary() -> None:
    with pytest.raises(ConfigurationError, match="'full' or 'no_boundary'"):
        Potsdam(root_of(Potsdam), 'test', labels='eroded')  # type: ignore[arg-type]


def test_tiles_of_different_sizes_are_a_data_error(tmp_path: Path) -> None:
    root = copy_fixture(Vaihingen, tmp_path)
    # Give area 6's DSM the shape of an odd area.
    (root / 'dsm' / 'dsm_09cm_matching_area6.tif').unlink()
    os.link(
        root / 'dsm' / 'dsm_09cm_matching_area1.tif',
        root / 'dsm' / 'dsm_09cm_matching_area6.tif',
    )
    dataset = Vaihingen(root, 'test')
    with pytest.raises(DataError, match='must share one grid'):
        dataset[dataset.tiles.index('top_mosaic_09cm_area6')]


# Plot -------------------------------------------------------------------------


@pytest.mark.parametrize('cls', ALL)
def test_plot_shows_every_modality_the_label_and_the_prediction(
    cls: type[BenchmarkDataset],
) -> None:
    dataset = cls(root_of(cls), 'test')  # type: ignore[call-arg]
    _, sample = whole_tiles(dataset)[0]
    figure = dataset.plot(sample, suptitle='tile')
    assert len(figure.axes) == len(dataset.modalities) + 1
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == [*dataset.modalities, 'label']
    plt.close(figure)
    sample[PREDICTION] = sample[MASK].clone()
    sample[AVAILABLE] = torch.tensor([True, False])
    figure = dataset.plot(sample, show_titles=False)
    assert len(figure.axes) == len(dataset.modalities) + 2
    assert all(axis.get_title() == '' for axis in figure.axes)
    assert len(figure.axes[0].images) == 1
    assert len(figure.axes[1].images) == 0  # the missing modality is left empty
    plt.close(figure)


@pytest.mark.parametrize(
    ('cls', 'modalities', 'expected'),
    [
        (Potsdam, None, {'optical': (0, 1, 2)}),  # bands named red, green, blue
        (Potsdam, ['dsm'], {}),  # one band: shown in grey
        (WHUOPTSAR, None, {'optical': (0, 1, 2)}),
        (EarthMiss, None, {'optical': (0, 1, 2)}),
        (Vaihingen, None, {'optical': (0, 1, 2)}),  # IR, R, G: false colour
    ],
)
def test_quicklook_bands_come_from_band_names_or_the_composite(
    cls: type[BenchmarkDataset],
    modalities: list[str] | None,
    expected: dict[str, tuple[int, int, int]],
) -> None:
    dataset = cls(root_of(cls), 'test', modalities=modalities)  # type: ignore[call-arg]
    assert dataset.quicklook_bands == expected


def test_paired_dataset_plot_shows_its_modalities() -> None:
    dataset = Potsdam(root_of(Potsdam), 'test')
    _, sample = whole_tiles(dataset)[0]
    figure = PairedDataset.plot(dataset, sample)
    assert [axis.get_title() for axis in figure.axes] == ['optical', 'dsm', 'label']
    plt.close(figure)


# Potsdam nDSM -----------------------------------------------------------------


def ndsm_paths(root: Path, tile: str) -> tuple[Path, Path]:
    """A Potsdam tile's nDSM JPEG and DSM GeoTIFF."""
    a, b = (int(n) for n in tile.split('_')[2:])
    return (
        root
        / '1_DSM_normalisation'
        / f'dsm_potsdam_{a:02d}_{b:02d}_normalized_lastools.jpg',
        root / '1_DSM' / f'dsm_potsdam_{a:02d}_{b:02d}.tif',
    )


def read_jpeg(path: Path) -> np.ndarray:
    """The decoded pixels of an nDSM JPEG (it has no georeferencing)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            pixels: np.ndarray = src.read(1).astype(np.float32)
    return pixels


def test_potsdam_default_modalities_leave_the_ndsm_out() -> None:
    assert Potsdam.select_modalities(None) == ('optical', 'dsm')
    assert Potsdam.num_bands_of(['ndsm', 'optical']) == {'optical': 4, 'ndsm': 1}


def test_potsdam_ndsm_is_the_jpeg_on_the_dsm_grid(tmp_path: Path) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    dataset = Potsdam(root, 'val', modalities=['ndsm', 'optical', 'dsm'])
    assert dataset.modalities == ('optical', 'dsm', 'ndsm')
    assert not list(root.glob('1_DSM_normalisation/*.jgw'))  # no world file
    for tile, sample in whole_tiles(dataset):
        jpeg, dsm = ndsm_paths(root, tile)
        pixels = read_jpeg(jpeg)
        with rasterio.open(dsm) as src:
            dsm_transform, dsm_bounds = src.transform, src.bounds
        ndsm = sample[image_key('ndsm')]
        assert ndsm.shape == (1, *pixels.shape)
        assert np.array_equal(ndsm[0].numpy(), pixels)
        assert len(np.unique(pixels)) > 10  # the row gradient is there
        expected = torch.tensor(list(dsm_transform), dtype=sample[TRANSFORM].dtype)
        assert torch.equal(sample[TRANSFORM].flatten(), expected)
        box = [dsm_bounds.left, dsm_bounds.right, dsm_bounds.bottom, dsm_bounds.top]
        bounds = sample[BOUNDS]
        assert torch.equal(bounds[[0, 1, 3, 4]], torch.tensor(box, dtype=bounds.dtype))
        # A window inside the tile, 5 rows and 3 columns off its corner.
        res = dataset.res[0]
        x0 = dsm_bounds.left + 3 * res
        y1 = dsm_bounds.top - 5 * res
        window = dataset[x0 : x0 + 8 * res : res, y1 - 8 * res : y1 : res]
        assert np.array_equal(window[image_key('ndsm')][0].numpy(), pixels[5:13, 3:11])
    # The VRT has exactly the DSM's CRS and transform.
    vrt = root / '.torchgeo_stars' / 'ndsm'
    jpeg, dsm = ndsm_paths(root, dataset.tiles[0])
    with rasterio.open(vrt / (jpeg.stem + '.vrt')) as a, rasterio.open(dsm) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)


def test_potsdam_ndsm_alone_is_read_on_the_dsm_grid(tmp_path: Path) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    dataset = Potsdam(root, 'test', modalities=['optical', 'ndsm'])
    _, sample = whole_tiles(dataset)[0]
    assert set(sample) == {
        image_key('optical'),
        image_key('ndsm'),
        MASK,
        AVAILABLE,
        BOUNDS,
        TRANSFORM,
    }
    # Its extent is the DSM files' extent.
    dsm_only = Potsdam(root, 'test', modalities=['dsm'])
    assert dataset.bounds == dsm_only.bounds


def test_a_missing_ndsm_names_the_file_and_the_folder(tmp_path: Path) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    jpeg, _ = ndsm_paths(root, 'top_potsdam_2_13')
    jpeg.unlink()
    Potsdam(root, 'test')  # not needed by default
    with pytest.raises(DataError, match=r"1 file\(s\) of the 'test' split") as info:
        Potsdam(root, 'test', modalities=['optical', 'ndsm'])
    message = str(info.value)
    assert f'1_DSM_normalisation/{jpeg.name}' in message
    assert Potsdam.url in message
    assert '\n' not in message


def test_an_ndsm_of_another_size_than_its_dsm_is_refused(tmp_path: Path) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    jpeg, dsm = ndsm_paths(root, 'top_potsdam_2_13')
    Image.fromarray(np.zeros((20, 24), dtype=np.uint8)).save(jpeg)
    with pytest.raises(DataError) as info:
        Potsdam(root, 'test', modalities=['ndsm'])
    message = str(info.value)
    assert str(jpeg) in message
    assert str(dsm) in message
    assert '24 x 20' in message
    assert '24 x 24' in message
    assert '\n' not in message


def test_the_ndsm_vrts_are_reused_and_rebuilt_when_a_jpeg_changes(
    tmp_path: Path,
) -> None:
    root = copy_fixture(Potsdam, tmp_path)
    Potsdam(root, 'val', modalities=['ndsm'])
    vrts = sorted((root / '.torchgeo_stars' / 'ndsm').iterdir())
    assert len(vrts) == len(Potsdam.val_tiles)
    stamps = {p: p.stat().st_mtime_ns for p in vrts}
    for path in vrts:  # an old stamp shows whether a file is written again
        os.utime(path, ns=(1, 1))
    Potsdam(root, 'val', modalities=['ndsm'])
    assert all(p.stat().st_mtime_ns == 1 for p in vrts)
    # A changed JPEG rewrites its VRT only, and the new pixels are read.
    tile = Potsdam.val_tiles[0]
    jpeg, dsm = ndsm_paths(root, tile)
    Image.fromarray(np.full((24, 24), 200, dtype=np.uint8)).save(jpeg)
    os.utime(jpeg, ns=(stamps[vrts[0]] + 10**9,) * 2)
    dataset = Potsdam(root, 'val', modalities=['ndsm'])
    changed = root / '.torchgeo_stars' / 'ndsm' / (jpeg.stem + '.vrt')
    assert changed.stat().st_mtime_ns != 1
    assert sum(p.stat().st_mtime_ns == 1 for p in vrts) == len(vrts) - 1
    assert sorted((root / '.torchgeo_stars' / 'ndsm').iterdir()) == vrts  # no temp
    with rasterio.open(dsm) as src:
        b = src.bounds
    res = dataset.res[0]
    sample = dataset[b.left : b.right : res, b.bottom : b.top : res]
    assert torch.all(sample[image_key('ndsm')] == 200)
