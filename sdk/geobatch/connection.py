"""Where a :class:`~geobatch.Client` sends its requests and as whom: the API URL (argument,
environment or local mode), the region, the boto3 session's credentials and the SigV4 signature.

:class:`~geobatch.client.Client` adds the requests themselves (retries, typed errors).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3

from geobatch.transport import LOCAL_HOSTS
from geobatch.wire import env


class Connection:
    """The configuration and credentials of a :class:`~geobatch.Client` (its arguments are documented
    there)."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        region: str | None = None,
        session: Any = None,
        retries: int = 3,
        timeout: tuple[float, float] = (9.5, 60),
        http: Any = None,
    ):
        self._explicit_url = api_url.rstrip("/") if api_url else None
        self._api_url: str | None = self._explicit_url
        self._from_local_mode = False
        # Whether a call that finds local mode gone starts it again (the SDK's first-use
        # behaviour); the web monitor only follows it, so `geobatch local down` stays down.
        self.restarts_local_mode = True
        self._region = region
        self._session = session
        self._credentials: Any = None
        self.retries = max(0, int(retries))
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._http = http or urllib3.PoolManager(retries=False, maxsize=16)
        self._lock = threading.Lock()
        self._sleep = time.sleep  # replaced by tests

    # ------------------------------------------------------------------ configuration

    @property
    def api_url(self) -> str:
        """The API base URL, resolved on first use (argument, then environment, then local mode)."""
        if self._api_url is None:
            with self._lock:
                if self._api_url is None:
                    self._api_url = self._resolve_url()
        return self._api_url

    def _resolve_url(self) -> str:
        from_env = os.environ.get(env.API_URL, "").strip()
        if from_env:
            return from_env.rstrip("/")
        # Imported here: local mode pulls in moto and the control plane, which a cloud user never needs.
        from geobatch.local import ensure_local_api

        self._from_local_mode = True
        return str(ensure_local_api()).rstrip("/")

    @property
    def is_local(self) -> bool:
        """True when the API runs on this machine (local mode), which sets shorter poll intervals."""
        url = self.api_url
        return self._from_local_mode or (urlsplit(url).hostname or "") in LOCAL_HOSTS

    @property
    def poll_interval(self) -> float:
        """Default seconds between status polls: 2 in local mode, 10 in the cloud."""
        return 2.0 if self.is_local else 10.0

    @property
    def region(self) -> str:
        """The AWS region requests are signed for."""
        if self._region is None:
            self._region = getattr(self._get_session(), "region_name", None) or "us-east-1"
        return self._region

    def _get_session(self) -> Any:
        if self._session is None:
            import boto3  # slow to import; only needed when the first request is signed

            self._session = boto3.Session()
        return self._session

    def _get_credentials(self) -> Any:
        from botocore.credentials import Credentials

        if self._credentials is None:
            found = self._get_session().get_credentials()
            # Refreshable credentials (SSO, assumed roles) refresh themselves on each use.
            self._credentials = found or Credentials("local", "local")
        return self._credentials

    def __repr__(self) -> str:
        return f"Client(api_url={self._api_url or '<unresolved>'!r})"

    # ------------------------------------------------------------------ requests
    def _sign(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self._get_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())
