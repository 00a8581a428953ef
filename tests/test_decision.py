"""engine/decision.py: money rounding and the decision's JSON form."""

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings, strategies as st

from engine.decision import Decision, Shipment, ShipmentLine, cents


def by_decimal(amount: float) -> float:
    """The definition: the amount as people read it (its repr), half-up to the cent."""
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + 0.0


@pytest.mark.parametrize("amount, expected", [
    (1.005, 1.01),          # the binary value is a hair below 1.005; people wrote 1.005
    (2.675, 2.68),
    (-1.005, -1.01),        # half away from zero
    (0.1 + 0.2, 0.3),
    (11.164999, 11.16),
    (11.165, 11.17),
    (7.0, 7.0),
    (-0.0, 0.0),
    (0.004, 0.0),
    (1234567.895, 1234567.9),
])
def test_cents_rounds_half_up_at_the_third_decimal(amount, expected):
    assert cents(amount) == expected
    assert str(cents(amount)) == str(expected)


@settings(max_examples=3000, derandomize=True, deadline=None, database=None)
@given(st.one_of(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
                 st.integers(-10**9, 10**9).map(lambda n: n / 1000),
                 st.integers(-10**7, 10**7).map(lambda n: n / 100 + 0.005)))
def test_cents_is_the_decimal_rounding(amount):
    assert str(cents(amount)) == str(by_decimal(amount))


@settings(max_examples=3000, derandomize=True, deadline=None, database=None)
@given(st.integers(-10**8, 10**8), st.sampled_from([0.005, 0.0, 0.995]), st.integers(-40, 40))
def test_cents_near_a_half_or_a_whole_cent(hundredths, offset, ulps):
    """Amounts a few ulps either side of x.xx5 and x.xx0, where the binary
    value and its repr can fall on different sides (cents() checks the
    binary value first and reads the repr only near a half)."""
    amount = hundredths / 100 + offset
    step = math.inf if ulps > 0 else -math.inf
    for _ in range(abs(ulps)):
        amount = math.nextafter(amount, step)
    assert str(cents(amount)) == str(by_decimal(amount))


def test_huge_amounts_take_the_decimal_path():
    assert cents(1e15) == by_decimal(1e15)
    assert cents(123456789012345.675) == by_decimal(123456789012345.675)


def test_the_total_is_the_sum_of_the_shown_shipment_costs():
    lines = (ShipmentLine("A", 1),)
    decision = Decision("O-1", "routed", shipments=(Shipment("N1", "C", lines, 1.005, 2, 10),
                                                     Shipment("N2", "C", lines, 2.675, 3, 20)))
    document = decision.to_json()
    assert [s["cost"] for s in document["shipments"]] == [1.01, 2.68]
    assert document["cost"] == 3.69
    assert document["days"] == 3
