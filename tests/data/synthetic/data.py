#!/usr/bin/env python3
"""Make the tiny synthetic scene used by the datamodule, task and CLI tests.

A 96 x 96 px (10 m) scene from the package's own generator, seed 0, six
classes: optical in UTM 32N at 10 m, SAR in UTM 31N at 20 m, DSM at 5 m and
labels, each with its own extent. Run ``python data.py`` in this folder to
regenerate it.
"""

import shutil
from pathlib import Path

from torchgeo_stars.datasets.synthetic import describe_scene, make_synthetic_scene

HERE = Path(__file__).resolve().parent
SIZE = 96

if __name__ == '__main__':
    for child in HERE.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    scene = make_synthetic_scene(HERE / 'scene', size=SIZE, seed=0, num_classes=6)
    print(describe_scene(scene))
