"""Adapters: the only modules that import boto3; they turn ClientError into domain errors."""
