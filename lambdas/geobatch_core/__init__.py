"""GeoBatch control-plane core: wire models, job state machine, ports and services.

Nothing in this package reads ``os.environ`` or creates boto3 clients; the Lambda
handlers, the worker and local mode build the adapters and pass them in.
"""
