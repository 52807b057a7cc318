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


def contained(table, bucket, other_function, key):  # type: ignore[no-untyped-def]
    """Tries what a hostile job would with the worker's credentials, and reads and writes its own
    declared data; returns what it could and could not do, and what credentials it was given."""
    import os

    import boto3
    from botocore.exceptions import ClientError

    function_id, _, job_key = os.environ["GEOBATCH_JOB_ID"].partition("-")
    s3, dynamodb, cloudwatch = boto3.client("s3"), boto3.client("dynamodb"), boto3.client("cloudwatch")
    attempts = {
        "update its own job item": lambda: dynamodb.update_item(
            TableName=table,
            Key={"function_id": {"S": function_id}, "job_key": {"S": job_key}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "success"}},
        ),
        "read its own Function's args": lambda: s3.get_object(Bucket=bucket, Key=f"args/{function_id}/x"),
        "read another Function's args": lambda: s3.get_object(Bucket=bucket, Key=f"args/{other_function}/x"),
        "read its bundle": lambda: s3.get_object(Bucket=bucket, Key=f"bundles/{function_id}.zip"),
        "write its result": lambda: s3.put_object(Bucket=bucket, Key=f"results/{function_id}/x", Body=b"x"),
        "metrics the alarms read": lambda: cloudwatch.put_metric_data(
            Namespace="GeoBatch", MetricData=[{"MetricName": "DeadLetterMessages", "Value": 0.0}]
        ),
        "the workers' metrics": lambda: cloudwatch.put_metric_data(
            Namespace="GeoBatch/Workers", MetricData=[{"MetricName": "JobsSucceeded", "Value": 1.0}]
        ),
    }
    denied, allowed = {}, []
    for what, attempt in attempts.items():
        try:
            attempt()
            allowed.append(what)
        except ClientError as exc:
            denied[what] = exc.response["Error"]["Code"]
    data = s3.get_object(Bucket="rehearsal-user-data", Key=f"inputs/{key}")["Body"].read()
    s3.put_object(Bucket="rehearsal-user-data", Key=f"products/v1/{key}", Body=data.upper())
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as parent:
            parent_environ = "readable, with keys" if b"AWS_SECRET" in parent.read() else "readable"
    except OSError as exc:
        parent_environ = f"unreadable ({exc.strerror})"
    return {
        "denied": denied,
        "allowed": allowed,
        "aws_names": sorted(k for k in os.environ if k.startswith("AWS_")),
        "parent_environ": parent_environ,
    }
