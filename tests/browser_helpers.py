"""Headless Chromium for the browser tests (tests/test_viewer_browser.py, tests/test_app_browser.py): a tiny
Chrome DevTools Protocol client over the websocket (``websockets`` ships with viser), so no extra packages or
browser downloads are needed. Chromium comes from ``scripts/install_chromium.sh``; without it the tests skip
(CI sets SEE3D_REQUIRE_CHROMIUM=1 so that they fail instead)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
# CI sets SEE3D_REQUIRE_CHROMIUM=1 so that a missing browser fails these tests instead of skipping them.
REQUIRE_CHROMIUM = os.environ.get("SEE3D_REQUIRE_CHROMIUM", "") not in ("", "0")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2) + 1e-12))


# ---------------------------------------------------------------------- a minimal Chrome DevTools Protocol client
class Browser:
    """Headless Chromium with one page, driven over the DevTools websocket."""

    def __init__(self, width: int, height: int):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="see3d-chromium-")
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
            f"--window-size={width},{height}", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
            "--hide-scrollbars", "--mute-audio",
        ]  # fmt: skip
        self.proc = subprocess.Popen([CHROMIUM, *flags, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        t_end = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > t_end:
                raise RuntimeError("chromium did not start (no DevToolsActivePort)")
            time.sleep(0.05)
        port = int(open(port_file).read().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # skip events until our reply
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, js: str):
        return self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)["result"].get("value")

    def screenshot(self) -> np.ndarray:
        """(H, W, 3) float in [0, 1] of the viewport."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float64) / 255.0

    def key(self, code: str, key: str, vk: int, hold_s: float) -> None:
        self.call("Input.dispatchKeyEvent", type="keyDown", code=code, key=key, windowsVirtualKeyCode=vk)
        time.sleep(hold_s)
        self.call("Input.dispatchKeyEvent", type="keyUp", code=code, key=key, windowsVirtualKeyCode=vk)

    def close(self) -> None:
        try:
            try:  # leave the page first: a page still reconnecting to a stopped server makes chromium slow to exit
                self.call("Page.navigate", url="about:blank")
            except Exception:
                pass
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


# Hide every element except the WebGL canvas and its ancestors (the GUI panel, notifications, ...).
HIDE_OVERLAYS = """(() => {
  const canvases = [...document.querySelectorAll('canvas')];
  const c = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
  if (!c) return 'no canvas';
  for (const el of document.body.querySelectorAll('*')) {
    if (el !== c && !el.contains(c)) el.style.visibility = 'hidden';
  }
  return c.width + 'x' + c.height;
})()"""


def browser_fixture(width: int, height: int):
    if CHROMIUM is None:
        msg = "needs a chromium binary (run scripts/install_chromium.sh; CI installs it)"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"SEE3D_REQUIRE_CHROMIUM is set but {msg}")
        pytest.skip(msg)
    b = Browser(width, height)
    yield b
    b.close()


def stable_screenshot(browser: Browser, timeout: float = 20.0) -> np.ndarray:
    """Screenshot once two consecutive frames agree (the splat sort runs asynchronously in a web worker)."""
    prev = browser.screenshot()
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        time.sleep(0.3)
        cur = browser.screenshot()
        if np.abs(cur - prev).max() < 2.5 / 255:
            return cur
        prev = cur
    raise AssertionError("the page did not settle on a stable frame")


def wait_for_button(browser: Browser, label: str, timeout: float = 30.0) -> bool:
    js = f"[...document.querySelectorAll('button')].some(b => b.textContent.trim() === {json.dumps(label)})"
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if browser.eval(js):
            return True
        time.sleep(0.1)
    return False


def click_button(browser: Browser, label: str) -> bool:
    """Click the page's button labelled ``label``; False when there is none."""
    return bool(browser.eval(f"(() => {{ const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === {json.dumps(label)});"
                             " if (!b) return false; b.click(); return true; })()"))  # fmt: skip
