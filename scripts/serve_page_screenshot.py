"""Regenerate docs/serve_page.png: the web page of `swiftavatar serve` after a prediction
(the shipped check photo astronaut.jpg, the pretrained:toon estimator), in headless Chromium.

    .venv/bin/python scripts/serve_page_screenshot.py [--out docs/serve_page.png]

Starts its own local Ray and Serve on 127.0.0.1 (a free port) and stops them at the end."""
from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))          # the DevTools client the browser test uses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve_page.png",
                        help="where the PNG goes (default docs/serve_page.png)")
    args = parser.parse_args()
    from cdp_browser import HOW_TO_INSTALL, Chromium, find_chromium

    exe = find_chromium()
    if exe is None:
        print(HOW_TO_INSTALL, file=sys.stderr)
        return 2
    import ray
    from ray import serve

    from actors.serving.app import start_service
    from actors.serving.settings import ServeSettings
    from swiftavatar.checkset.records import SHIPPED_DIR

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        url = start_service(ServeSettings(models=("pretrained:toon",), port=port))
        with Chromium(exe, width=1280, height=760) as page:   # the page sets the height
            page.goto(f"{url}/")
            page.wait_for("document.getElementById('app').dataset.state === 'idle'")
            page.set_files("#photo", [SHIPPED_DIR / "astronaut.jpg"])
            page.wait_for("document.getElementById('app').dataset.state === 'ready'", 120)
            page.evaluate("window.scrollTo(0, 0)")
            print(page.screenshot(args.out))
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
