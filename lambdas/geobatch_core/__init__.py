"""GeoBatch control-plane core: job state machine, ports, services and adapters (the wire models
are the SDK's, in ``geobatch.wire``).

Nothing in this package reads ``os.environ`` or creates boto3 clients; the Lambda
handlers, the worker and local mode build the adapters and pass them in.
"""
