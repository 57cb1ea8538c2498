"""Tests of torchgeo_stars.inference."""
