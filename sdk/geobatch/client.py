"""HTTP client of the GeoBatch REST API: configuration, SigV4 signing, retries and typed errors.

Every SDK object (``Function``, ``Job``, searches) talks to the service through a :class:`Client`.
Most programs never build one: the default client is created on first use from the environment
(``GEOBATCH_API_URL``), or starts local mode when nothing is configured.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

from geobatch.connection import Connection
from geobatch.transport import (
    IDEMPOTENCY_HEADER,
    IN_PROGRESS_RETRIES,
    RETRY_STATUSES,
    WRITE_METHODS,
    Response,
    backoff_seconds,
    encode_params,
    error_of,
    in_progress,
)
from geobatch.wire import errors

__all__ = ["Client", "ComputeClient", "Response", "configure", "get_default_client", "set_default_client"]


class Client(Connection):
    """A connection to one GeoBatch API.

    Args:
        api_url: base URL of the API. Default: the ``GEOBATCH_API_URL`` environment variable, else
            local mode (started on first use if it is not running).
        region: AWS region used to sign requests. Default: the boto3 session's region, else
            ``us-east-1``.
        session: a ``boto3.Session`` whose credentials sign the requests. Default: a new session
            (the usual AWS credential chain). With no credentials at all (local mode) requests are
            signed with the placeholder key ``local``.
        retries: how many times a request is retried after a connection error, a timeout or a
            429/5xx answer, with exponential backoff. Every method is retried: writes carry an
            ``Idempotency-Key`` the API honours, so a retry never creates a second Function or job.
        timeout: ``(connect, read)`` timeouts in seconds.
        http: a ``urllib3.PoolManager`` to use (for proxies or custom certificates).
    """

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        ok_statuses: tuple[int, ...] = (),
        idempotency_key: str | None = None,
    ) -> Response:
        """Send a signed request to the API and return the response; raise a typed error on 4xx/5xx.

        ``path`` starts with ``/``. ``json_body`` is encoded once, so a retried request sends exactly
        the same bytes. Every write (POST, PUT, PATCH, DELETE) carries an ``Idempotency-Key`` (a new
        one per call unless ``idempotency_key`` is given) that its retries reuse, so the API carries
        it out once even when an answer is lost. ``ok_statuses`` are error statuses the caller
        handles itself.
        """
        url = self.api_url + path
        query = encode_params(params)
        if query:
            url += "?" + query
        all_headers = {"Accept": "application/json", "User-Agent": "geobatch-sdk"}
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), default=str).encode()
            all_headers["Content-Type"] = "application/json"
        if method.upper() in WRITE_METHODS:
            all_headers[IDEMPOTENCY_HEADER] = idempotency_key or uuid.uuid4().hex
        all_headers.update(headers or {})
        return self._send(method, url, body, all_headers, sign=True, stream=stream, ok_statuses=ok_statuses)

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        *,
        sign: bool,
        stream: bool = False,
        ok_statuses: tuple[int, ...] = (),
    ) -> Response:
        attempt = 0
        while True:
            try:
                raw = self._open(method, url, body, headers, sign=sign)
            except Urllib3HTTPError as exc:
                moved = self._local_api_moved(url, exc)
                if moved is not None:
                    url = moved  # local mode restarted on another port: follow it, same request
                    continue
                if attempt < self.retries:
                    self._backoff(attempt, None)
                    attempt += 1
                    continue
                raise self._unreachable(method, url, headers, exc) from None
            status = raw.status
            if status in RETRY_STATUSES and attempt < self.retries:
                retry_after = raw.headers.get("Retry-After")
                raw.drain_conn()
                raw.release_conn()
                self._backoff(attempt, retry_after)
                attempt += 1
                continue
            if 200 <= status < 300 and stream:
                return Response(status, dict(raw.headers), raw=raw)
            data = raw.read()
            raw.release_conn()
            response = Response(status, dict(raw.headers), data)
            if status == 409 and attempt < self.retries + IN_PROGRESS_RETRIES and in_progress(response):
                # Our own earlier attempt (same Idempotency-Key) is still running: wait for it.
                self._backoff(min(attempt, 3), response.headers.get("Retry-After"))
                attempt += 1
                continue
            if status >= 400 and status not in ok_statuses:
                raise self._error(response)
            return response

    def _open(self, method: str, url: str, body: bytes | None, headers: dict[str, str], *, sign: bool) -> Any:
        """One HTTP exchange, its body left unread (the caller streams or reads it)."""
        # Signed again on every attempt: the signature holds the time of the request.
        send_headers = self._sign(method, url, body, headers) if sign else dict(headers)
        return self._http.request(
            method,
            url,
            body=body,
            headers=send_headers,
            timeout=self.timeout,
            retries=False,
            redirect=False,
            preload_content=False,
        )

    def _local_api_moved(self, url: str, exc: Exception) -> str | None:
        """The URL on local mode's current port, when local mode (not an explicit URL) answered
        before and now refuses connections because it was restarted elsewhere; else None."""
        if not self._from_local_mode or self._api_url is None or not url.startswith(self._api_url):
            return None
        if not isinstance(exc, NewConnectionError | MaxRetryError) and "refused" not in str(exc):
            return None
        old = self._api_url
        with self._lock:
            if self.restarts_local_mode:
                self._api_url = self._resolve_url()
            else:
                from geobatch.local import read_state

                state = read_state()
                self._api_url = str(state["api_url"]).rstrip("/") if state else old
        return None if self._api_url == old else self._api_url + url[len(old) :]

    def _unreachable(
        self, method: str, url: str, headers: Mapping[str, str], exc: Exception
    ) -> errors.GeoBatchError:
        """Slow is not down: a read timeout means the API got the request and did not answer in
        time; a connection error means it could not be reached at all."""
        host = urlsplit(url).netloc
        tries = self.retries + 1
        if isinstance(exc, ReadTimeoutError) or "Read timed out" in str(exc):
            safe = (
                "it may still be carried out; calling the same method again is safe (retries of a "
                "write reuse its Idempotency-Key, and resubmitted job batches their reference_id)"
                if IDEMPOTENCY_HEADER in headers
                else "calling it again is safe (it only reads)"
            )
            return errors.ApiTimeoutError(
                f"the GeoBatch API at {host} is slow: {method} {urlsplit(url).path} got no answer "
                f"within {self.timeout.read_timeout:g} s ({tries} tries); {safe}. A larger timeout "
                "helps: geobatch.configure(timeout=(10, 300))"
            )
        return errors.ServiceError(f"cannot reach the GeoBatch API at {host} ({tries} tries): {exc}")

    def _backoff(self, attempt: int, retry_after: str | None) -> None:
        self._sleep(backoff_seconds(attempt, retry_after))

    @staticmethod
    def _error(response: Response) -> errors.GeoBatchError:
        return error_of(response)

    # ------------------------------------------------------------------ helpers

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and return the decoded JSON body."""
        return self.request("GET", path, params=params).json()

    def post(
        self,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """POST a JSON body and return the decoded JSON answer."""
        return self.request(
            "POST",
            path,
            params=params,
            json_body=body if body is not None else {},
            idempotency_key=idempotency_key,
        ).json()

    def patch(self, path: str, body: Any, idempotency_key: str | None = None) -> Any:
        """PATCH with a JSON body and return the decoded JSON answer."""
        return self.request("PATCH", path, json_body=body, idempotency_key=idempotency_key).json()

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Each page (``{"data": [...], "meta": {...}}``) of a list endpoint, following the cursor.

        The first request carries ``params``; later ones ``page_cursor``, ``page_size`` and
        ``include`` (what each item carries), because the cursor encodes the query.
        """
        params = dict(params or {})
        page = self.get(path, params)
        yield page
        cursor = (page.get("meta") or {}).get("page_cursor")
        while cursor:
            later = {
                "page_cursor": cursor,
                "page_size": params.get("page_size"),
                "include": params.get("include"),
            }
            page = self.get(path, later)
            yield page
            cursor = (page.get("meta") or {}).get("page_cursor")

    def put_presigned(self, url: str, data: bytes, content_type: str = "application/zip") -> None:
        """Upload ``data`` to a presigned S3 URL (plain PUT, not SigV4 signed)."""
        self._send("PUT", url, data, {"Content-Type": content_type}, sign=False)

    def get_presigned(self, url: str) -> bytes:
        """Download the body of a presigned S3 URL (plain GET)."""
        return self._send("GET", url, None, {}, sign=False).data


# The Descartes Labs name, so ported code keeps working.
ComputeClient = Client

_default_client: Client | None = None
_default_lock = threading.Lock()


def get_default_client() -> Client:
    """The client used when none is given: set by :func:`configure`, else built from the environment."""
    global _default_client
    if _default_client is None:
        with _default_lock:
            if _default_client is None:
                _default_client = Client()
    return _default_client


def set_default_client(client: Client | None) -> None:
    """Make ``client`` the default (``None`` resets to the environment's configuration)."""
    global _default_client
    _default_client = client


def configure(
    api_url: str | None = None,
    *,
    region: str | None = None,
    session: Any = None,
    retries: int = 3,
    timeout: tuple[float, float] = (9.5, 60),
) -> Client:
    """Build a :class:`Client` with these settings, make it the default, and return it.

    Example: ``geobatch.configure("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")``.
    """
    client = Client(api_url, region=region, session=session, retries=retries, timeout=timeout)
    set_default_client(client)
    return client
