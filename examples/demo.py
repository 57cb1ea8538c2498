"""The README's main job: synthetic scene -> STARS training -> per-scenario table.

Run with ``make demo`` (or ``.venv/bin/python examples/demo.py OUT_DIR``). On a
laptop-class CPU it takes a few minutes:

1. write a synthetic optical + SAR + DSM + label scene, each modality in its
   own CRS and resolution (``torchgeo-stars synthetic``);
2. pair the modalities by geographic extent and show one batch;
3. train STARS on the western part of the scene;
4. test on the eastern part under every missing-modality scenario and print
   the table;
5. predict a georeferenced GeoTIFF of the whole scene from SAR + DSM only
   (optical missing) and check its grid.

``--quick`` shrinks everything for a smoke test.
"""

import argparse
import time
from pathlib import Path

import lightning
import rasterio
import torch

from torchgeo_stars import STARSSegmentationTask
from torchgeo_stars.datamodules import MultimodalDataModule
from torchgeo_stars.datasets import describe_scene, make_synthetic_scene
from torchgeo_stars.main import main as cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', type=Path, help='folder for the scene and results')
    parser.add_argument('--quick', action='store_true', help='tiny smoke-test settings')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
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
        log_every_n_steps=10,
        enable_model_summary=False,
    )
    trainer.fit(task, datamodule=datamodule)

    print('== 4. test area, every missing-modality scenario (percent):')
    trainer.test(task, datamodule=datamodule, verbose=False)

    print('== 5. GeoTIFF prediction from SAR + DSM only (optical missing)')
    checkpoint = args.out_dir / 'stars.ckpt'
    trainer.save_checkpoint(checkpoint)
    output = args.out_dir / 'prediction_sar_dsm.tif'
    status = cli(
        [
            'predict-geotiff',
            '--checkpoint',
            str(checkpoint),
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
    print(f'done in {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    main()
