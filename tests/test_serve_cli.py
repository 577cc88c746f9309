"""`swiftavatar serve` as a command, end to end: its own local Ray, the service on 127.0.0.1,
one request answered, SIGTERM, exit 0, no Ray process left and the port closed. (The API
itself is tested in test_serve.py, on the session's Ray.)"""
from __future__ import annotations

import os
import signal

import pytest

from test_serve import MODEL, _free_port, _image, _png, _post_photo

requests = pytest.importorskip("requests")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_the_command_serves_until_sigterm_and_leaves_no_ray_process(tmp_path):
    from driver_procs import PYTHON, Driver, reap, wait_for

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    driver = Driver([PYTHON, "-m", "swiftavatar", "serve", "--model", MODEL, "--align",
                     "none", "--port", str(port)], tmp_path / "serve.log").start()
    try:
        wait_for(lambda: f"serving toon on {url}" in driver.output(), 150,
                 "the service to start", driver, poll_s=0.5)
        r = _post_photo(url, _png(_image(7)))
        assert r.status_code == 200 and "hair_style" in r.json()["vector"]
        os.kill(driver.proc.pid, signal.SIGTERM)
        assert driver.wait(60) == 0, driver.output()
        assert "stopped" in driver.output()
    finally:
        if driver.proc.poll() is None:
            driver.kill_group()
        reap(driver.tmpdir)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/healthz", timeout=5)
