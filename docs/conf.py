"""Sphinx configuration of the torchgeo-stars documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath('..'))
sys.path.insert(0, os.path.abspath('_ext'))

import torchgeo_stars

project = 'torchgeo-stars'
author = 'torchgeo-stars developers'
copyright = '2026, torchgeo-stars developers'
version = release = torchgeo_stars.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.viewcode',
    'sphinx.ext.intersphinx',
    'benchmark_results',
]
autodoc_typehints = 'description'
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True, 'show-inheritance': True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, None]] = {}
html_theme = 'alabaster'
html_static_path: list[str] = []
exclude_patterns = ['_build', '_ext']
suppress_warnings = ['ref.python']
