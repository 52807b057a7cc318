"""The map page's routes in the monitor server: its static files, the vendored Leaflet, and the map API.

- ``/map.html``, ``/map.js``, ``/map.css``, ``/vendor/leaflet/...``: static, from the package.
- ``GET /ui-api/map/config``: the tile token and the optional basemap URL.
- ``GET /ui-api/map/layer?src=URI``: what a layer is (kind, bbox, legend classes, related layers).
- ``GET /ui-api/map/tiles/Z/X/Y.png?src=URI[&composite=false-colour]&t=TOKEN``: one map tile.
- ``GET /ui-api/map/agreement?a=URI&b=URI&bbox=W,S,E,N``: agreement of two class layers in a view.
- ``GET /ui-api/map/run/FUNCTION_ID``: the Function's jobs as GeoJSON with progress over time.

The JSON routes need the monitor's ``X-GeoBatch-UI`` header like every proxy call. Map tiles are
loaded by ``<img>`` elements, which cannot send headers, so tile URLs carry instead a random token
that this server gave the page (a page of another site cannot read it, so it cannot make this
server read S3 for it).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from geobatch.wire import errors

__all__ = ["MapRoutes"]

_STATIC = {
    "/map.html": ("map.html", "text/html; charset=utf-8"),
    "/map.js": ("map.js", "text/javascript; charset=utf-8"),
    "/map.css": ("map.css", "text/css; charset=utf-8"),
    "/chart.js": ("chart.js", "text/javascript; charset=utf-8"),
    "/monitor-links.js": ("monitor-links.js", "text/javascript; charset=utf-8"),
    "/vendor/leaflet/leaflet.js": ("vendor/leaflet/leaflet.js", "text/javascript; charset=utf-8"),
    "/vendor/leaflet/leaflet.css": ("vendor/leaflet/leaflet.css", "text/css; charset=utf-8"),
    "/vendor/leaflet/LICENSE": ("vendor/leaflet/LICENSE", "text/plain; charset=utf-8"),
}
_IMAGES = re.compile(r"^/vendor/leaflet/images/([a-z0-9-]+\.png)$")
_TILE = re.compile(r"^/ui-api/map/tiles/(\d{1,2})/(\d{1,8})/(\d{1,8})\.png$")
_RUN = re.compile(r"^/ui-api/map/run/([A-Za-z0-9_\-]{1,128})$")
# The query parameters each route takes; any other is refused (a misspelt one would be ignored).
_PARAMS = {"tiles": {"src", "composite", "t", "v"}, "layer": {"src"}, "agreement": {"a", "b", "bbox"}}


def _basemap_origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "a"))
    return f"{parts.scheme}://{parts.netloc.replace('a.', '*.', 1) if '{s}' in url else parts.netloc}"


class MapNotInstalledError(errors.GeoBatchError):
    """The map view was asked for, but this install has no geo extra (numpy, rasterio, pyproj)."""

    status = 501
    code = "map_not_installed"


class MapRoutes:
    """The map's routes, bound to one :class:`~geobatch.ui.mapservice.MapService` (made on first use)."""

    def __init__(self, client: Any, *, aws_env: dict[str, str] | None = None, basemap: str | None = None):
        if basemap and not re.match(r"^https://[^\s'\"]+\{z\}[^\s'\"]*$", basemap):
            raise ValueError("basemap must be an https:// tile URL with {z}, {x} and {y}")
        self.client = client
        self.aws_env = aws_env
        self.basemap = basemap
        self.token = secrets.token_urlsafe(24)
        self._service: Any = None
        self._service_env: dict[str, str] | None = None

    @property
    def service(self) -> Any:
        """The map service, made again when local mode has restarted on another S3 port."""
        try:  # the map renders COGs: numpy, rasterio and pyproj come with the geo extra only
            from geobatch.ui.mapservice import MapService
        except ImportError as exc:
            raise MapNotInstalledError(
                f"the map view needs the geo extra ({exc.name} is not installed): "
                "pip install 'geobatch[geo]'; the rest of the monitor works without it"
            ) from exc

        env = self._resolve_aws_env()
        if self._service is None or env != self._service_env:
            old, self._service, self._service_env = self._service, MapService(env), env
            if old is not None:
                old.close()
        return self._service

    def _resolve_aws_env(self) -> dict[str, str] | None:
        if self.aws_env is not None:
            return self.aws_env
        if self.client.is_local:  # local mode: its S3 (moto on 127.0.0.1), as the SDK finds it now
            from geobatch.local import local_aws_env

            return local_aws_env()
        return None  # a deployed stack: the user's AWS credentials and real S3

    def close(self) -> None:
        if self._service is not None:
            self._service.close()

    def csp(self) -> str:
        img = " ".join(filter(None, ("'self'", "data:", _basemap_origin(self.basemap))))
        return (
            f"default-src 'self'; img-src {img}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        )

    # ------------------------------------------------------------------ dispatch

    def handle(self, handler: Any) -> bool:
        """Serve the request if it is the map's; False to let the monitor route it."""
        url = urlsplit(handler.path)
        path = url.path
        if path in _STATIC or _IMAGES.match(path):
            if handler.command not in ("GET", "HEAD"):
                handler._error(405, "method_not_allowed", f"{path} is read-only")
                return True
            name, content_type = _STATIC.get(path) or (
                f"vendor/leaflet/images/{path.rsplit('/', 1)[1]}",
                "image/png",
            )
            from geobatch.ui.server import _static

            try:
                body = _static(name)
            except FileNotFoundError:
                handler._error(404, "not_found", f"no file {path}")
                return True
            self._send(handler, 200, body, content_type)
            return True
        if not path.startswith("/ui-api/map/"):
            return False
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._api(handler, path, query)
        except ConnectionError:
            pass  # the map moved on (tiles of a finished pan) before the answer
        except errors.GeoBatchError as exc:
            self._send(handler, exc.status, json.dumps(exc.to_body()).encode())
        except Exception as exc:
            handler.log_error("map error: %r", exc)
            handler._error(502, "map_error", f"{type(exc).__name__}: {exc}")
        return True

    def _send(self, handler: Any, status: int, body: bytes, content_type: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        # Tiles change while a run fills a product in: the page asks again with a new version instead.
        handler.send_header(
            "Cache-Control", "private, max-age=60" if content_type == "image/png" else "no-store"
        )
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.send_header("Content-Security-Policy", self.csp())
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _api(self, handler: Any, path: str, query: dict[str, str]) -> None:
        if handler.command != "GET":
            raise errors.BadRequestError(f"{handler.command} {path}: the map API is read-only (GET)")
        route = path.split("/")[3] if path.count("/") >= 3 else ""
        unknown = set(query) - _PARAMS.get(route, set())
        if unknown:
            allowed = ", ".join(sorted(_PARAMS.get(route, set()))) or "none"
            raise errors.ValidationError(
                f"unknown query parameter(s) {', '.join(sorted(unknown))} for {path} (allowed: {allowed})",
                [{"loc": ["query", name], "msg": "unknown parameter"} for name in sorted(unknown)],
            )
        if match := _TILE.match(path):
            if not secrets.compare_digest(query.get("t", ""), self.token):
                handler._error(403, "forbidden", "map tiles need the token the map page was given")
                return
            z, x, y = (int(g) for g in match.groups())
            body = self.service.tile(_required(query, "src"), z, x, y, query.get("composite") or None)
            self._send(handler, 200, body, "image/png")
            return
        if not handler.headers.get("X-GeoBatch-UI") or not handler._origin_ok():
            handler._error(403, "forbidden", "map calls need the X-GeoBatch-UI header and this origin")
            return
        self._send(handler, 200, json.dumps(self._json_route(path, query), default=str).encode())

    def _json_route(self, path: str, query: dict[str, str]) -> Any:
        if path == "/ui-api/map/config":
            return {"token": self.token, "basemap": self.basemap}
        if path == "/ui-api/map/layer":
            return self.service.layer_info(_required(query, "src"))
        if path == "/ui-api/map/agreement":
            return self.service.agreement(_required(query, "a"), _required(query, "b"), _bbox(query))
        if match := _RUN.match(path):
            from geobatch.ui.runmap import run_features

            return run_features(self.client, match.group(1))
        raise errors.NotFoundError(f"no map route {path}")


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name, "").strip()
    if not value:
        raise errors.ValidationError(
            f"missing query parameter {name!r}", [{"loc": ["query", name], "msg": "required"}]
        )
    return value


def _bbox(query: dict[str, str]) -> tuple[float, float, float, float]:
    raw = _required(query, "bbox")
    try:
        w, s, e, n = (float(v) for v in raw.split(","))
    except ValueError:
        raise errors.ValidationError(f"bbox {raw!r} is not four numbers W,S,E,N") from None
    return w, s, e, n
