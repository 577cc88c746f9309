"""A real headless Chromium driven over the Chrome DevTools Protocol (its websocket, with the
`websockets` package Ray Serve already installs): no Selenium, no downloaded browsers. Used by
tests/test_web_page.py and scripts/serve_page_screenshot.py."""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HOW_TO_INSTALL = ("no chromium on PATH: install Debian's with `apt-get install -y chromium` "
                  "(scripts/test.sh does, when run as root)")
KEYS = {"End": 35, "Home": 36, "ArrowUp": 38, "ArrowDown": 40}


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


class Chromium:
    """One headless browser with one page; `call` sends a CDP command to the page (or, with
    page=False, to the browser) and returns its result; every wait is bounded."""

    def __init__(self, exe: str, *, width: int = 1280, height: int = 900,
                 fake_camera: bool = False, timeout: float = 30.0) -> None:
        from websockets.sync.client import connect

        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._id = 0
        self._profile = tempfile.mkdtemp(prefix="cdp-")
        args = [exe, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-dev-shm-usage",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")       # Chromium's sandbox refuses to run as root
        if fake_camera:
            args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        self.proc = subprocess.Popen(args + ["about:blank"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port, path = self._endpoint()
            self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None,
                              open_timeout=timeout).__enter__()
            targets = self.call("Target.getTargets", page=False)["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            self.session = self.call("Target.attachToTarget", {"targetId": page,
                                                               "flatten": True},
                                     page=False)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            self.call("Emulation.setScrollbarsHidden", {"hidden": True})
        except BaseException:
            self.close()
            raise

    def _endpoint(self) -> tuple[str, str]:
        active = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} at start")
            lines = active.read_text().split() if active.exists() else []
            if len(lines) >= 2:
                return lines[0], lines[1]
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, params: dict | None = None, *, page: bool = True) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method} in {self.timeout:g} s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") != self._id:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            else:
                return reply["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression (awaited if it is a promise)."""
        out = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True})
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, what: str = "") -> Any:
        """Poll a JS expression until it is truthy (one that throws counts as false);
        TimeoutError with its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(f"(() => {{ try {{ return {expression}; }} "
                                  f"catch (e) {{ return null; }} }})()")
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:g} s for {what or expression}; last "
                                   f"value {value!r}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        """Open `url` and wait until it has loaded."""
        self.call("Page.navigate", {"url": url})
        self.wait_for(f"location.href === {url!r} && document.readyState === 'complete'",
                      timeout=self.timeout, what=f"{url} to load")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose files in an <input type=file> as a user would (fires its change event)."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        x, y = self.evaluate(f"(() => {{ const e = document.querySelector({selector!r}); "
                             f"e.scrollIntoView({{block: 'center'}}); "
                             f"const r = e.getBoundingClientRect(); "
                             f"return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def press(self, selector: str, key: str) -> None:
        """Focus the element and press a key (End, Home, ArrowUp, ArrowDown)."""
        self.evaluate(f"document.querySelector({selector!r}).focus()")
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": KEYS[key]})

    def image_bytes(self, selector: str) -> bytes:
        """The bytes behind an <img>'s src (a blob: or data: URL)."""
        data_url = self.evaluate(
            f"(async () => {{ const b = await (await fetch(document.querySelector("
            f"{selector!r}).src)).blob(); return await new Promise((ok) => {{ "
            f"const f = new FileReader(); f.onload = () => ok(f.result); "
            f"f.readAsDataURL(b); }}); }})()")
        return base64.b64decode(data_url.split(",", 1)[1])

    def screenshot(self, path: Path) -> Path:
        """The whole page as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                    "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
