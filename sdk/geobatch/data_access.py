"""What data a Function's jobs may touch (:class:`S3Access`), and how job code reads public archives.

Declare the locations when you create the Function::

    fn = gb.Function(
        classify,
        data_access=gb.S3Access(
            read=["s3://my-bucket/models/*", "s3://my-bucket/stac/*"],
            write=["s3://my-bucket/products/landcover-v1/*"],
            public=["s3://sentinel-cogs/*"],
        ),
    )

The Function's worker role then allows exactly these reads and writes (and its own state); a
deployed stack refuses locations outside what its operator allows when the Function is saved.
``public`` locations are public archives, read *unsigned* as they are meant to be read: inside a
job, :func:`reads_unsigned` says whether a URI is one of them and :func:`gdal_options` gives the
GDAL settings to open it (``AWS_NO_SIGN_REQUEST=YES`` for those paths only, so the job's own
signed reads and writes are unaffected).
"""

from __future__ import annotations

import os
from typing import Any

from geobatch.wire import data_access
from geobatch.wire.env import UNSIGNED_S3
from geobatch.wire.models import S3Access

__all__ = ["S3Access", "boto3_config", "gdal_options", "reads_unsigned"]


def reads_unsigned(uri: str, environ: Any = None) -> bool:
    """Whether the running job should read ``uri`` (``s3://`` or ``/vsis3/``) unsigned.

    True when ``uri`` is under one of the Function's ``public`` locations, which the worker lists
    in ``GEOBATCH_UNSIGNED_S3``; outside a job (nothing listed) always False.
    """
    return data_access.reads_unsigned(uri, (os.environ if environ is None else environ).get(UNSIGNED_S3))


def gdal_options(uri: str, environ: Any = None) -> dict[str, str]:
    """GDAL config options to open ``uri`` with, e.g. ``rasterio.Env(**gdal_options(href))``."""
    return {"AWS_NO_SIGN_REQUEST": "YES"} if reads_unsigned(uri, environ) else {}


def boto3_config(uri: str, environ: Any = None) -> Any:
    """A botocore ``Config`` for a client reading ``uri``: unsigned for public locations, else None."""
    if not reads_unsigned(uri, environ):
        return None
    from botocore import UNSIGNED
    from botocore.config import Config

    return Config(signature_version=UNSIGNED)
