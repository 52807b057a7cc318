"""The user code of the rehearsal's Functions (bundled with the SDK's own ``make_bundle``)."""


def double(x):  # type: ignore[no-untyped-def]
    return {"doubled": 2 * x}


def upper_tile(key):  # type: ignore[no-untyped-def]
    """Reads a tile from the user's bucket and writes its product, with the worker role's credentials."""
    import boto3

    s3 = boto3.client("s3")
    body = s3.get_object(Bucket="rehearsal-user-data", Key=f"inputs/{key}")["Body"].read()
    s3.put_object(Bucket="rehearsal-user-data", Key=f"products/v1/{key}", Body=body.upper())
    return {"product": f"s3://rehearsal-user-data/products/v1/{key}"}
