"""Open an HTML file in headless Chromium with networking off and report what happened.

Decision (documented in docs/reports.md): we drive Chromium over the DevTools protocol on
``--remote-debugging-pipe`` (JSON messages separated by NUL bytes on file descriptors 3 and 4),
which needs no websocket package. That gives exact facts instead of log scraping: every
network request the page attempts (``Network.requestWillBeSent``), console messages
(``Runtime.consoleAPICalled``), uncaught exceptions (``Runtime.exceptionThrown``), browser log
entries such as CSP violations (``Log.entryAdded``), DOM queries (``Runtime.evaluate``) and
PNG screenshots (``Page.captureScreenshot``). The network is emulated offline as well, and
Chromium's own background traffic is switched off with flags.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["chromium_path", "PageCheck", "check_page", "CDPError"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    "--remote-debugging-pipe",
)


class CDPError(RuntimeError):
    """The browser did not answer as expected."""


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    """A duplicate of ``fd`` numbered 10 or above (the original is closed)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class _Pipe:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, binary: str, user_data_dir: Path, log_path: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        # the child gets them as fds 3 and 4: move them out of the way of those numbers first
        cmd_r, evt_w = _high_fd(cmd_r), _high_fd(evt_w)
        self._log = log_path.open("wb")
        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"]
        script = f'exec "$0" "$@" 3<&{cmd_r} 4>&{evt_w} {cmd_r}<&- {evt_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, *args],
            pass_fds=(cmd_r, evt_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(cmd_r)
        os.close(evt_w)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._evt_r, "rb", buffering=0) as fh:
            while True:
                chunk = fh.read(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    msg, buf = buf.split(b"\0", 1)
                    self._queue.put(json.loads(msg))
        self._queue.put(None)

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            item = self._get(deadline, method)
            if item.get("id") == ident:
                if "error" in item:
                    raise CDPError(f"{method}: {item['error']}")
                return item.get("result", {})
            self.events.append(item)

    def wait_event(self, method: str, *, timeout: float = 30.0) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while True:
            item = self._get(deadline, method)
            self.events.append(item)
            if item.get("method") == method:
                return item

    def _get(self, deadline: float, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CDPError(f"timed out waiting for {what}")
        try:
            item = self._queue.get(timeout=remaining)
        except queue.Empty:
            raise CDPError(f"timed out waiting for {what}") from None
        if item is None:
            raise CDPError(f"the browser closed the pipe while waiting for {what}")
        return item

    def close(self) -> None:
        try:
            os.write(self._cmd_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._cmd_w)
        self._log.close()


@dataclass
class PageCheck:
    """What the page did in the browser."""

    requests: list[str] = field(default_factory=list)  # every URL the page requested
    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)
    log_entries: list[tuple[str, str, str]] = field(default_factory=list)  # (level, source, text)
    dom: dict[str, Any] = field(default_factory=dict)  # results of the probe script
    narrow: dict[str, Any] = field(default_factory=dict)  # the probe at a phone width
    screenshots: list[Path] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:", "about:"))]

    @property
    def errors(self) -> list[str]:
        out = [
            f"console.{lvl}: {txt}"
            for lvl, txt in self.console
            if lvl in ("error", "warning", "assert")
        ]
        out += [f"exception: {e}" for e in self.exceptions]
        out += [
            f"log {lvl} ({src}): {txt}"
            for lvl, src, txt in self.log_entries
            if lvl in ("error", "warning")
        ]
        return out


def check_page(
    html_path: Path,
    *,
    probe: str,
    screenshot_dir: Path | None = None,
    name: str = "page",
    width: int = 1280,
    narrow_width: int = 414,
    timeout: float = 60.0,
) -> PageCheck:
    """Load ``html_path`` offline, run the JS expression ``probe`` (must return a JSON-able
    value), at ``width`` and at ``narrow_width``, and save full-page PNG screenshots."""
    binary = chromium_path()
    if binary is None:
        raise CDPError("chromium not found; install it with `apt-get install -y chromium`")
    result = PageCheck()
    with tempfile.TemporaryDirectory(prefix="offrec-chromium-") as tmp:
        pipe = _Pipe(binary, Path(tmp) / "profile", Path(tmp) / "chromium.log")
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            session = pipe.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": True,
                    "latency": 0,
                    "downloadThroughput": -1,
                    "uploadThroughput": -1,
                },
                session=session,
            )
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": 900,
                    "deviceScaleFactor": 1,
                    "mobile": False,
                },
                session=session,
            )
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
            pipe.wait_event("Page.loadEventFired", timeout=timeout)
            result.dom = _evaluate(pipe, session, probe)
            if screenshot_dir is not None:
                result.screenshots.append(
                    _screenshot(pipe, session, screenshot_dir / f"{name}-{width}.png")
                )
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": narrow_width,
                    "height": 900,
                    "deviceScaleFactor": 1,
                    "mobile": True,
                },
                session=session,
            )
            result.narrow = _evaluate(pipe, session, probe)
            if screenshot_dir is not None:
                result.screenshots.append(
                    _screenshot(
                        pipe,
                        session,
                        screenshot_dir / f"{name}-{narrow_width}.png",
                        max_height=2400,
                    )
                )
            # let late events (a lazy request, a deferred error) arrive
            pipe.send("Runtime.evaluate", {"expression": "1"}, session=session)
        finally:
            pipe.close()
    for e in pipe.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Network.requestWillBeSent":
            result.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            result.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            result.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            result.log_entries.append(
                (entry.get("level", ""), entry.get("source", ""), entry.get("text", ""))
            )
    return result


def _evaluate(pipe: _Pipe, session: str, expression: str) -> dict[str, Any]:
    res = pipe.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
    )
    if "exceptionDetails" in res:
        raise CDPError(f"probe failed: {res['exceptionDetails']}")
    return res["result"].get("value", {})


def _screenshot(pipe: _Pipe, session: str, path: Path, max_height: int = 20000) -> Path:
    metrics = pipe.send("Page.getLayoutMetrics", session=session)
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width, height = int(size["width"]), min(int(size["height"]), max_height)
    shot = pipe.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
        session=session,
        timeout=60,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
