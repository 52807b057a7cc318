"""Worker entrypoint (``python -m geobatch_worker``): the container command, and local mode's subprocess."""

from __future__ import annotations

import logging
import os
import socket
import sys

from geobatch.wire import env


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    environ = os.environ
    if not environ.get(env.LOCAL_STATE):  # AWS: the task role's credentials out of user code's sight
        from geobatch_worker.credentials import hide_task_credentials

        hide_task_credentials(environ)  # re-executes this process once (returns in the new one)
    import boto3

    from geobatch_core.adapters.environment import settings_from_env, stores_from_env
    from geobatch_worker.loop import Worker, WorkerConfig
    from geobatch_worker.metrics import JobMetrics, cloudwatch_client

    memory = environ.get(env.WORKER_MEMORY_LIMIT_MB)
    config = WorkerConfig(
        function_id=environ[env.WORKER_FUNCTION_ID],
        queue_url=environ[env.WORKER_QUEUE_URL],
        # In AWS Batch the worker is known by its job id (array children: "id:index"), which is
        # what Batch's job-state events name when a container dies.
        worker_id=environ.get(env.WORKER_ID)
        or environ.get("AWS_BATCH_JOB_ID")
        or f"{socket.gethostname()}-{os.getpid()}",
        idle_seconds=float(environ.get(env.WORKER_IDLE_SECONDS, "60")),
        poll_seconds=int(environ.get(env.WORKER_POLL_SECONDS, "20")),
        memory_limit_mb=float(memory) if memory else None,
    )
    session = boto3.session.Session()
    functions, jobs, queue, blobs = stores_from_env(environ, session)
    # The job metrics go to CloudWatch; in local mode to local mode's moto (AWS_ENDPOINT_URL), which
    # accepts them like CloudWatch, so the worker runs the same code there (nothing plots them).
    worker = Worker(
        config,
        functions=functions,
        jobs=jobs,
        queue=queue,
        blobs=blobs,
        settings=settings_from_env(environ),
        metrics=JobMetrics(cloudwatch_client(session)),
    )
    worker.install_signal_handlers()
    stats = worker.run()
    logging.getLogger("geobatch.worker").info("worker done: %s", stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
