import pytest

from torchgeo_stars.datasets.keys import (
    AVAILABLE,
    BOUNDS,
    MASK,
    TRANSFORM,
    check_modalities,
    image_key,
    modality_of,
)
from torchgeo_stars.errors import ConfigurationError


def test_image_keys_round_trip() -> None:
    for name in ('optical', 'sar', 'dsm', 'sar_asc', 's2'):
        assert modality_of(image_key(name)) == name
    for key in (MASK, AVAILABLE, BOUNDS, TRANSFORM, 'image', 'image_'):
        assert modality_of(key) is None


def test_check_modalities_accepts_names_and_band_counts() -> None:
    check_modalities(['optical', 'sar_asc'], 'x')
    check_modalities({'optical': 4, 'sar': 2}, 'x', minimum=2)


@pytest.mark.parametrize(
    ('modalities', 'minimum', 'message'),
    [
        ({}, 1, 'x: give at least one modality'),
        ({'optical': 3}, 2, 'x needs at least 2 modalities'),
        (['optical', 'sar-asc'], 1, r"modality names \['sar-asc'\] are not valid"),
        ({'optical': 3, 'sar': 0}, 1, "'sar' must have a positive band count"),
        ({'optical': True}, 1, "'optical' must have a positive band count"),
        ({'optical': 2.0}, 1, "'optical' must have a positive band count"),
    ],
)
def test_check_modalities_names_the_problem(
    modalities: object, minimum: int, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_modalities(modalities, 'x', minimum)  # type: ignore[arg-type]
