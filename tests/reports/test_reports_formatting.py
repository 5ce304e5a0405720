"""Display formatting of numbers, intervals, dates and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from reports.formatting import (
    fmt_date,
    fmt_datetime,
    fmt_duration,
    fmt_int,
    fmt_interval,
    fmt_num,
    fmt_pct,
    fmt_pct_interval,
    fmt_signed,
    fmt_signed_pct,
)

M = "\u2212"
CASES = [
    (fmt_num, (0.123456,), "0.1235"),
    (fmt_num, (-12.3456,), f"{M}12.35"),
    (fmt_num, (123456.7,), "123,457"),
    (fmt_num, (0.00001234,), "1.23e-05"),
    (fmt_num, (0,), "0"),
    (fmt_num, (None,), "\u2014"),
    (fmt_num, (float("nan"),), "\u2014"),
    (fmt_num, (True,), "\u2014"),
    (fmt_signed, (0.0421,), "+0.0421"),
    (fmt_signed, (-0.0421,), f"{M}0.0421"),
    (fmt_pct, (0.1234,), "12.3%"),
    (fmt_pct, (0.000001,), "<0.001%"),
    (fmt_pct, (1.0,), "100%"),
    (fmt_signed_pct, (0.081,), "+8.1%"),
    (fmt_signed_pct, (-0.05,), f"{M}5%"),
    (fmt_interval, (0.1, 0.2), "[0.1, 0.2]"),
    (fmt_interval, (None, 0.2), "\u2014"),
    (fmt_pct_interval, (-0.01, 0.03), f"[{M}1%, +3%]"),
    (fmt_int, (1254331,), "1,254,331"),
    (fmt_int, (-5,), f"{M}5"),
    (fmt_duration, (0.42,), "0.42 s"),
    (fmt_duration, (12.4,), "12 s"),
    (fmt_duration, (184,), "3 min 04 s"),
    (fmt_duration, (3725,), "1 h 02 min"),
    (fmt_duration, (None,), "\u2014"),
    (
        fmt_datetime,
        (datetime(2024, 5, 1, 5, 0, tzinfo=timezone(timedelta(hours=2))),),
        "2024-05-01 03:00 UTC",
    ),
    (fmt_date, (datetime(2024, 5, 1, tzinfo=UTC),), "2024-05-01"),
    (fmt_date, ("2024-05-01",), "\u2014"),
]


@pytest.mark.parametrize("fn, args, expected", CASES)
def test_formatting(fn, args, expected) -> None:  # noqa: ANN001
    assert fn(*args) == expected


def test_signed_interval() -> None:
    assert fmt_interval(-0.1, 0.2, signed=True) == f"[{M}0.1, +0.2]"
