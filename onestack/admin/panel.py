"""Serve the web panel's static files at ``/`` with strict security headers.

The panel is a set of ES modules under ``onestack/admin/panel/``; no build
step runs at serve time. The route is added after the API routers and the
WebSocket route, and it matches HTTP requests only, so ``/api/...`` and a
WebSocket upgrade on ``/`` never reach it, and a plain GET of ``/`` returns
``index.html``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

logger = logging.getLogger(__name__)

PANEL_DIR = Path(__file__).resolve().parent / "panel"

# No inline script or style anywhere in the panel. The message view's frame
# is a srcdoc document, which fetches nothing, so frame-src needs no blob:.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate every time: an upgraded server must not run stale modules.
    "Cache-Control": "no-cache",
}

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",
}


def resolve_panel_file(url_path: str, root: Path = PANEL_DIR) -> Path | None:
    """Return the file under ``root`` that ``url_path`` names, or None.

    ``/`` is ``index.html``. Dotfiles, directories, unknown file types and any
    path that resolves outside ``root`` (``..``, symlinks) give None.
    """
    relative = url_path.lstrip("/") or "index.html"
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    if candidate.suffix not in MEDIA_TYPES:
        return None
    return candidate


async def panel_file(request: Request) -> Response:
    """Return a panel file with the security headers, or 404."""
    file = resolve_panel_file(request.url.path)
    if file is None:
        return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    return FileResponse(
        file, media_type=MEDIA_TYPES[file.suffix], headers=SECURITY_HEADERS
    )


class PanelRoute(Route):
    """A catch-all GET route that leaves every ``/api`` path alone.

    An API path that no router matches then gets the router's own 404 in the
    API's error envelope, whatever the method, and a wrong method on an
    existing API route still gets that route's 405.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def install(app: Starlette) -> None:
    """Add the panel route; call it after every API and WebSocket route."""
    app.router.routes.append(
        PanelRoute("/{path:path}", panel_file, methods=["GET", "HEAD"], name="panel")
    )
