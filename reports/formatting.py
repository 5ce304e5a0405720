"""Number, date and duration formatting for the report (Jinja filters). Display only."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FILTERS",
    "fmt_num",
    "fmt_signed",
    "fmt_pct",
    "fmt_signed_pct",
    "fmt_interval",
    "fmt_pct_interval",
    "fmt_int",
    "fmt_duration",
    "fmt_datetime",
    "fmt_date",
    "is_number",
]

DASH = "\u2014"
MINUS = "\u2212"


def is_number(x: Any) -> bool:
    """A finite int or float (not bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _core(a: float) -> str:
    if a == 0:
        return "0"
    if a >= 10_000:
        return f"{a:,.0f}"
    if a >= 0.001:
        s = f"{a:.4g}"
        return s if "e" not in s else f"{a:.1f}"
    return f"{a:.2e}"


def fmt_num(x: Any) -> str:
    """4 significant digits, thousands separators, a true minus sign; None -> em dash."""
    if not is_number(x):
        return DASH
    return (MINUS if x < 0 else "") + _core(abs(float(x)))


def fmt_signed(x: Any) -> str:
    """Like :func:`fmt_num` but always with a sign: +0.0421, \u22120.013."""
    if not is_number(x):
        return DASH
    if x == 0:
        return "0"
    return ("+" if x > 0 else MINUS) + _core(abs(float(x)))


def _pct_core(a: float) -> str:
    if a == 0:
        return "0"
    if a < 0.001:
        return "<0.001"
    if a >= 100:
        return f"{a:,.0f}"
    return f"{a:.3g}"


def fmt_pct(x: Any) -> str:
    """A share as a percentage: 0.1234 -> 12.3%."""
    if not is_number(x):
        return DASH
    return (MINUS if x < 0 else "") + _pct_core(abs(float(x)) * 100) + "%"


def fmt_signed_pct(x: Any) -> str:
    """A relative lift as a signed percentage: 0.081 -> +8.1%."""
    if not is_number(x):
        return DASH
    if x == 0:
        return "0%"
    return ("+" if x > 0 else MINUS) + _pct_core(abs(float(x)) * 100) + "%"


def fmt_interval(lo: Any, hi: Any, *, signed: bool = False) -> str:
    """``[lo, hi]``; an em dash when either end is missing."""
    if not (is_number(lo) and is_number(hi)):
        return DASH
    f = fmt_signed if signed else fmt_num
    return f"[{f(lo)}, {f(hi)}]"


def fmt_pct_interval(lo: Any, hi: Any) -> str:
    """``[-1.2%, +3.4%]`` for relative lifts."""
    if not (is_number(lo) and is_number(hi)):
        return DASH
    return f"[{fmt_signed_pct(lo)}, {fmt_signed_pct(hi)}]"


def fmt_int(x: Any) -> str:
    """Thousands separators: 1254331 -> 1,254,331."""
    if not is_number(x):
        return DASH
    return f"{round(x):,}".replace("-", MINUS)


def fmt_duration(seconds: Any) -> str:
    """0.42 s, 12.4 s, 3 min 04 s, 1 h 02 min."""
    if not is_number(seconds):
        return DASH
    s = float(seconds)
    if s < 10:
        return f"{s:.2g} s" if s < 1 else f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def fmt_datetime(dt: Any) -> str:
    """``2024-05-01 03:00 UTC``."""
    if not isinstance(dt, datetime):
        return DASH
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_date(dt: Any) -> str:
    """``2024-05-01``."""
    if not isinstance(dt, datetime):
        return DASH
    return dt.astimezone(UTC).strftime("%Y-%m-%d")


FILTERS = {
    "num": fmt_num,
    "signed": fmt_signed,
    "pct": fmt_pct,
    "signed_pct": fmt_signed_pct,
    "interval": fmt_interval,
    "pct_interval": fmt_pct_interval,
    "thousands": fmt_int,
    "duration": fmt_duration,
    "datetime": fmt_datetime,
    "date": fmt_date,
}
