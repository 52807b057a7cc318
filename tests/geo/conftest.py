"""Fixtures for geo tests: an in-process moto S3 server on a free 127.0.0.1 port, reached over real HTTP.

The server (not moto's in-process mock) is needed because GDAL's ``/vsis3/`` reads go through libcurl, which
boto3 mocks cannot intercept.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[dict[str, Any]]:
    """Running moto server with AWS_* env pointing at it; yields {"endpoint", "client"}."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        try:
            yield {"endpoint": endpoint, "client": client}
        finally:
            server.stop()
