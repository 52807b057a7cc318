"""AWS list prices used by the cost figures of the benchmarks — the ONE place they live.

us-east-1, on-demand, USD. As read 2025-06 from the AWS pricing pages (DynamoDB on-demand after the
November 2024 price cut). Check https://aws.amazon.com/pricing/ before quoting them elsewhere.
"""

from __future__ import annotations

AS_READ = "2025-06 (us-east-1 list prices, on-demand; DynamoDB after the Nov 2024 cut)"

PRICES: dict[str, tuple[float, str]] = {
    # key: (USD per unit, unit)
    "dynamodb_wru": (0.625 / 1e6, "write request unit (1 KB, standard table, on-demand)"),
    "dynamodb_rru": (0.125 / 1e6, "read request unit (4 KB strongly consistent, 2x4 KB eventually)"),
    "sqs_request": (0.40 / 1e6, "standard-queue request (each 64 KB chunk of payload)"),
    "s3_put": (0.005 / 1e3, "PUT/COPY/POST/LIST request (S3 Standard)"),
    "s3_get": (0.0004 / 1e3, "GET and other requests (S3 Standard)"),
    "lambda_request": (0.20 / 1e6, "Lambda invocation (x86)"),
    "lambda_gb_s": (0.0000166667, "Lambda GB-second (x86)"),
    "apigw_rest_request": (3.50 / 1e6, "API Gateway REST API request (first 333 M/month)"),
    # CloudWatch: as known from its pricing page in 2025 (standard tier), not re-read with the rest.
    "cloudwatch_request": (0.01 / 1e3, "CloudWatch API request, e.g. PutMetricData (first 1 M/month free)"),
    # Prorated by the hour: a metric costs only in the hours it receives data (first 10,000 metrics).
    "cloudwatch_metric_month": (0.30, "CloudWatch custom metric-month (a name + dimension values)"),
}


def price(key: str) -> float:
    return PRICES[key][0]


def table_rows() -> list[list[str]]:
    return [[k, f"{v * 1e6:,.4f}", unit] for k, (v, unit) in PRICES.items()]
