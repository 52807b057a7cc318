"""The GeoBatch web monitor: ``geobatch ui`` serves a page on 127.0.0.1 and proxies it to the API.

The page never sees AWS credentials: it calls a same-origin ``/api/...`` proxy, and this process
signs each forwarded request with SigV4 through :class:`geobatch.Client`.
"""

from geobatch.ui.server import MonitorServer, serve

__all__ = ["MonitorServer", "serve"]
