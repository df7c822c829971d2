"""RUT normalisation: every accepted spelling maps to one normal form; bad check digits say which is right."""

from __future__ import annotations

import pytest

from components.spec import normalise_rut


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("76953480-6", "76953480-6"),
        ("76.953.480-6", "76953480-6"),
        ("769534806", "76953480-6"),
        ("076.953.480-6", "76953480-6"),
        ("10000013-K", "10000013-K"),
        ("10.000.013-k", "10000013-K"),
        ("10000013k", "10000013-K"),
        ("0-0", "0-0"),
        ("00.000.000-0", "0-0"),
        ("000000000", "0-0"),
        ("99.999.999-9", "99999999-9"),
        ("11.111.111-1", "11111111-1"),
        ("1-9", "1-9"),
        (" 12.345.678-5 ", "12345678-5"),
        (769534806, "76953480-6"),
    ],
)
def test_accepted_spellings_give_the_normal_form(given: str | int, normal: str) -> None:
    assert normalise_rut(given) == normal


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("12.345.678-9", "'12.345.678-9' has check digit 9, expected 5"),
        ("10000013-0", "'10000013-0' has check digit 0, expected K"),
        ("76953480-K", "'76953480-K' has check digit K, expected 6"),
        ("0-1", "'0-1' has check digit 1, expected 0"),
    ],
)
def test_wrong_check_digit_names_the_expected_one(given: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalise_rut(given)
    assert str(caught.value) == message


@pytest.mark.parametrize("given", ["", "-", "K", "12.345.678-X", "12a45678-5", "abc", "123.456.789-0", "12.345.678-55"])
def test_malformed_values_are_rejected(given: str) -> None:
    with pytest.raises(ValueError, match="is not a RUT"):
        normalise_rut(given)


def test_spellings_of_one_rut_are_one_tenant() -> None:
    spellings = ["76.953.480-6", "076953480-6", "769534806", "76953480-6"]
    assert {normalise_rut(s) for s in spellings} == {"76953480-6"}
