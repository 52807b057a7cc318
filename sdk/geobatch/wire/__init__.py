"""The wire contract shared by the SDK, the control plane and the worker.

Request and response models, the error taxonomy (one class per HTTP status, the same on both ends),
the result codec, limits, environment variable names and the data-access rules. It needs only
pydantic and packaging, so the SDK, the Lambda asset and the worker image all carry it.
"""
