"""The web page at `/`: plain HTML, CSS and JS files shipped in `static/` (no build step,
nothing loaded from outside, which the page's Content-Security-Policy enforces). Only the
files named here are served: a client's path is never opened."""
from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

PAGE = "index.html"
ASSETS = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
# same origin only; images and downloads as data:/blob: URLs; the camera's stream is an object
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob: mediastream:; connect-src 'self' blob:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@lru_cache(maxsize=None)
def read_static(name: str) -> bytes:
    """A shipped file's bytes (`name` must be PAGE or one of ASSETS)."""
    if name != PAGE and name not in ASSETS:
        raise KeyError(name)
    return files(__package__).joinpath("static", name).read_bytes()


def wants_html(accept: str) -> bool:
    """A browser asking for a page (Accept names text/html); API clients get JSON."""
    return "text/html" in accept.lower()


__all__ = ["ASSETS", "CSP", "HEADERS", "PAGE", "read_static", "wants_html"]
