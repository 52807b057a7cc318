"""GDAL settings for reading COGs over HTTP and ``/vsis3/``, decided in one place and set once per job.

:func:`gdal_options` is the one decision: which GDAL config options a job reading imagery needs.
:func:`rasterio_env` turns them into a ``rasterio.Env``; a job enters it once where it starts
(:func:`geobatch.landcover.job.run_tile`) and every read inside reuses its cached connections and
blocks. The options take the buckets a job reads as an argument so a Function's declared data
access can drive them later.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from geobatch.data_access import reads_unsigned

# Host names to recognise as local (plain-HTTP endpoints are allowed there); nothing binds to them.
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"}  # nosec B104

#: Public, requester-free buckets of the Sentinel-2 archive and their regions.
PUBLIC_BUCKETS: dict[str, str] = {"sentinel-cogs": "us-west-2"}

#: What every imagery job gets: range requests merged, retries on throttling and 5xx, no directory
#: listing on open (a COG is one file; listing its folder costs a request per open), a block cache.
HTTP_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.json",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 * 1024 * 1024),
}


def local_endpoint(environ: dict[str, str] | None = None) -> Any:
    """Parsed ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` when it points at this machine, else None."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    return url if url.hostname in _LOCAL_HOSTS else None


def gdal_s3_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """GDAL config options for ``/vsis3/`` derived from the standard AWS environment variables.

    When ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` points at a local endpoint (moto server), GDAL needs
    the endpoint without scheme, plain HTTP, path-style addressing and explicit credentials/region. Against
    real AWS the result is empty so GDAL keeps its defaults (credential chain, virtual hosting, HTTPS).
    Use through :func:`rasterio_env` (rasterio rejects credential keys passed to ``rasterio.Env``).
    """
    env: Any = os.environ if environ is None else environ
    url = local_endpoint(env)
    if url is None:
        return {}
    return {
        "AWS_S3_ENDPOINT": url.netloc,
        "AWS_HTTPS": "NO" if url.scheme == "http" else "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
    }


def gdal_options(
    environ: dict[str, str] | None = None, *, read_buckets: Iterable[str] | None = None
) -> dict[str, str]:
    """Every GDAL option an imagery job needs, for the buckets it reads (None: not known).

    A local endpoint (moto server) adds :func:`gdal_s3_env`. When every bucket read is public
    (:func:`is_public`), requests go unsigned (``AWS_NO_SIGN_REQUEST``, no credentials needed), in
    the archive's region on real AWS; otherwise GDAL signs with the job's role as usual.
    """
    local = gdal_s3_env(environ)
    opts = {**HTTP_OPTIONS, **local}
    buckets = set(read_buckets) if read_buckets is not None else set()
    if buckets and all(is_public(b, environ) for b in buckets):
        opts["AWS_NO_SIGN_REQUEST"] = "YES"
        regions = {PUBLIC_BUCKETS[b] for b in buckets if b in PUBLIC_BUCKETS}
        if len(regions) == 1 and not local:
            opts["AWS_REGION"] = regions.pop()
    return opts


def is_public(bucket: str, environ: dict[str, str] | None = None) -> bool:
    """A bucket read unsigned: a known public archive, or one the Function declared ``public``.

    The declaration (``data_access.public``) reaches the job as ``GEOBATCH_UNSIGNED_S3``; a public
    location narrower than the whole bucket keeps the bucket's reads signed (one GDAL session signs
    or does not, for every path it opens).
    """
    return bucket in PUBLIC_BUCKETS or reads_unsigned(f"s3://{bucket}/", environ)


def rasterio_env(*, read_buckets: Iterable[str] | None = None, **options: Any) -> Any:
    """``rasterio.Env`` with :func:`gdal_options` plus ``options``.

    rasterio refuses AWS credential keys as plain config options (``EnvError``), so the credentials and
    region go through an ``AWSSession`` and the rest (endpoint, HTTPS, addressing) as GDAL options.
    """
    import rasterio
    from rasterio.session import AWSSession

    opts = {**gdal_options(read_buckets=read_buckets), **options}
    key = opts.pop("AWS_ACCESS_KEY_ID", None)
    secret = opts.pop("AWS_SECRET_ACCESS_KEY", None)
    region = opts.pop("AWS_REGION", None)
    if opts.pop("AWS_NO_SIGN_REQUEST", None) == "YES":
        session = AWSSession(aws_unsigned=True, region_name=region, endpoint_url=opts.get("AWS_S3_ENDPOINT"))
        return rasterio.Env(session=session, **opts)
    if key is None:
        return rasterio.Env(**opts)
    session = AWSSession(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        endpoint_url=opts.get("AWS_S3_ENDPOINT"),
    )
    return rasterio.Env(session=session, **opts)


def ensure_env(**kwargs: Any) -> Any:
    """The job's GDAL environment if one is active (entered once where the job starts), else a new one."""
    import contextlib

    from rasterio.env import hasenv

    return contextlib.nullcontext() if hasenv() else rasterio_env(**kwargs)


def buckets_of(hrefs: Iterable[str]) -> set[str]:
    """Buckets named by ``s3://`` hrefs and by ``https://BUCKET.s3.REGION.amazonaws.com/`` hrefs."""
    out: set[str] = set()
    for href in hrefs:
        url = urlparse(href)
        if url.scheme == "s3":
            out.add(url.netloc)
        elif url.scheme == "https" and ".s3." in (url.hostname or ""):
            out.add((url.hostname or "").split(".s3.")[0])
    return out
