"""Tests of torchgeo_stars.models."""
