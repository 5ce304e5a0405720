"""Job logging: human-readable lines by default, JSON lines with ``--log-format json``."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["setup_logging", "get_logger", "log_event"]

_LOGGER_NAME = "offrec"


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = getattr(record, "fields", None) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"[{stamp}] {level}{record.getMessage()}" + (f"  ({extra})" if extra else "")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        payload.update(getattr(record, "fields", None) or {})
        return json.dumps(payload, default=str)


def setup_logging(fmt: str = "human", *, stream: Any = None) -> logging.Logger:
    """Configure the ``offrec`` logger (idempotent); ``fmt`` is ``human`` or ``json``."""
    if fmt not in ("human", "json"):
        raise ValueError(f"--log-format must be human or json, got {fmt!r}")
    logger = logging.getLogger(_LOGGER_NAME)
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _HumanFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(_LOGGER_NAME)


def log_event(message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` with structured ``fields`` (shown as k=v, or as JSON keys)."""
    get_logger().log(level, message, extra={"fields": fields})
