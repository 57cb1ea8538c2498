"""The README's main job: synthetic scene -> STARS training -> maps and scores.

Run with ``make demo`` (or ``.venv/bin/python examples/demo.py OUT_DIR``). On a
laptop-class CPU it takes a few minutes:

1. write a synthetic optical + SAR + DSM + label scene, each modality in its
   own CRS and resolution (``torchgeo-stars synthetic``);
2. pair the modalities by geographic extent and show one batch;
3. train STARS on the western part of the scene;
4. test on the eastern part under every missing-modality scenario and print
   the table;
5. save the training checkpoint and export the small inference model file
   (``torchgeo-stars export``);
6. predict a georeferenced GeoTIFF of the whole scene from SAR + DSM only
   (optical missing) with the exported model (``torchgeo-stars
   predict-geotiff``);
7. draw ``scenarios.png`` beside it: the optical quicklook, the label, the map
   of every scenario and the mIoU of each; the last lines say what to open.

``--quick`` shrinks everything for a smoke test.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightning
import matplotlib
import numpy as np
import rasterio
import torch
from rasterio.vrt import WarpedVRT

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets import describe_scene, make_synthetic_scene
from torchgeo_stars.datasets.synthetic import SyntheticScene
from torchgeo_stars.inference import load_predictor, predict_geotiff
from torchgeo_stars.main import main as cli
from torchgeo_stars.quiet import quiet_third_party
from torchgeo_stars.tasks import modality_scenarios, scenario_name
from torchgeo_stars.tasks.plotting import plot_scenario_maps

matplotlib.use('Agg')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', type=Path, help='folder for the scene and results')
    parser.add_argument('--quick', action='store_true', help='tiny smoke-test settings')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_on_grid(path: Path, reference: Path) -> np.ndarray:
    """Read a raster resampled onto another raster's grid (nodata as NaN)."""
    with (
        rasterio.open(reference) as ref,
        rasterio.open(path) as src,
        WarpedVRT(
            src,
            crs=ref.crs,
            transform=ref.transform,
            width=ref.width,
            height=ref.height,
            resampling=rasterio.enums.Resampling.bilinear,
        ) as vrt,
    ):
        data: np.ndarray = vrt.read(masked=True).astype('float32').filled(np.nan)
    return data


def scenario_figure(
    scene: SyntheticScene,
    model_file: Path,
    test_miou: dict[str, float],
    output: Path,
    patch: int,
) -> int:
    """Predict the scene under every scenario on the label grid and plot it.

    Returns:
        The number of scenario panels drawn.
    """
    predictor = load_predictor(model_file)
    with rasterio.open(scene.mask) as src:
        crs, res = src.crs.to_string(), src.res
        bounds = tuple(src.bounds)
        label = src.read(1)
    predictions = {}
    with tempfile.TemporaryDirectory() as folder:
        for subset in modality_scenarios(list(predictor.modalities)):
            name = scenario_name(subset)
            path = predict_geotiff(
                predictor.model,
                {modality: scene.images[modality] for modality in subset},
                Path(folder) / f'{name}.tif',
                modalities=predictor.modalities,
                class_names=predictor.class_names,
                colors=predictor.colors,
                statistics=predictor.statistics,
                reader_options=predictor.reader_options,
                crs=crs,
                res=res,
                bounds=bounds,
                patch_size=4 * patch,
                overlap=patch // 2,
                device='cpu',
                progress=False,
            )
            with rasterio.open(path) as src:
                predictions[name] = torch.from_numpy(src.read(1).astype('int64'))
    optical = torch.from_numpy(read_on_grid(scene.images['optical'], scene.mask))
    figure = plot_scenario_maps(
        optical,
        torch.from_numpy(label.astype('int64')),
        predictions,
        {name: test_miou.get(name, float('nan')) for name in predictions},
        predictor.class_names,
        predictor.colors,
        quicklook_title='optical (quicklook)',
    )
    figure.savefig(output, dpi=80)
    matplotlib.pyplot.close(figure)
    return len(predictions)


def main() -> None:
    quiet_third_party()
    args = parse_args()
    start = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    size, patch, epochs, steps = (192, 32, 1, 4) if args.quick else (512, 64, 6, 20)
    scene_dir = args.out_dir / 'scene'
    print(f'== 1. writing a synthetic scene to {scene_dir}')
    scene = make_synthetic_scene(scene_dir, size=size, seed=args.seed, overwrite=True)
    print(describe_scene(scene))

    datamodule = MultimodalDataModule(
        paths={name: str(path) for name, path in scene.images.items()},
        mask=str(scene.mask),
        ignore_index=255,
        batch_size=8,
        patch_size=patch,
        length=steps * 8,
        seed=args.seed,
    )
    datamodule.setup('fit')
    batch = next(iter(datamodule.train_dataloader()))
    print('== 2. one paired training batch:')
    for key, value in batch.items():
        print(f'   {key:<15} {tuple(value.shape)!s:<22} {value.dtype}')

    print(f'== 3. training STARS for {epochs} epoch(s) of {steps} steps on CPU')
    lightning.seed_everything(args.seed, workers=True)
    task = STARSSegmentationTask(
        modalities=datamodule.modalities,
        num_classes=len(scene.class_names),
        class_names=list(scene.class_names),
        class_colors=list(scene.class_colors),
        ignore_index=255,
        backbone='resnet18',
        lr=2e-3,
    )
    trainer = lightning.Trainer(
        max_epochs=epochs,
        accelerator='cpu',
        default_root_dir=args.out_dir / 'runs',
        log_every_n_steps=min(10, steps),
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=datamodule)

    print('== 4. test area, every missing-modality scenario (percent):')
    trainer.test(task, datamodule=datamodule, verbose=False)

    print('== 5. saving the training checkpoint and exporting the model file')
    checkpoint = args.out_dir / 'stars.ckpt'
    # The full checkpoint (optimizer state included) resumes training.
    trainer.save_checkpoint(checkpoint, weights_only=False)
    model_file = args.out_dir / 'stars.safetensors'
    status = cli(['export', str(checkpoint), str(model_file), '--overwrite'])
    if status != 0:
        raise SystemExit(status)

    print('== 6. GeoTIFF prediction from SAR + DSM only (optical missing)')
    output = args.out_dir / 'prediction_sar_dsm.tif'
    status = cli(
        [
            'predict-geotiff',
            '--checkpoint',
            str(model_file),
            '--sar',
            str(scene.images['sar']),
            '--dsm',
            str(scene.images['dsm']),
            '--output',
            str(output),
            '--overwrite',
            '--no-progress',
        ]
    )
    if status != 0:
        raise SystemExit(status)
    with rasterio.open(output) as src:
        print(f'   {output}: {src.width}x{src.height} px, {src.crs}, res {src.res}')

    print('== 7. maps of every scenario on the label grid')
    figure = output.with_name('scenarios.png')
    test_miou = {
        name: score.miou for name, score in task.scenario_scores['test'].items()
    }
    panels = scenario_figure(scene, model_file, test_miou, figure, patch)
    print(f'   {figure}: optical, label, {panels} scenario maps, mIoU bars')

    tensorboard = Path(sys.executable).with_name('tensorboard')
    size = model_file.stat().st_size / 1e6
    print(f'done in {time.perf_counter() - start:.0f} s. Open:')
    print(f"   {shown(figure):<40} every scenario's map and mIoU")
    print(f'   {shown(output):<40} the map as a GeoTIFF (e.g. in QGIS)')
    print(
        f'   {shown(model_file):<40} the model to share ({size:.0f} MB; '
        f'{checkpoint.name}, {checkpoint.stat().st_size / 1e6:.0f} MB, resumes training)'
    )
    print('Training curves and validation figures:')
    print(
        f'   {shown(tensorboard) if tensorboard.exists() else "tensorboard"} '
        f'--logdir {shown(args.out_dir / "runs")}'
    )


if __name__ == '__main__':
    main()
