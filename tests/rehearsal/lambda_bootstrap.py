"""A warm Lambda execution environment, as the python3.11 runtime runs one (stdlib only: it runs in
the runtime interpreter). argv: task root, handler ("module.function"), log file.

The task root (the unzipped code asset) comes first on sys.path, the runtime's own packages (boto3,
botocore) after it, as in Lambda. The handler module is imported once (cold start); then each line on
stdin is one event, and each answer one JSON line on the original stdout: the result, or the error as
Lambda reports it (errorType/errorMessage/stackTrace). The function's own output goes to the log file
(its CloudWatch log stream in AWS).
"""

import importlib
import json
import os
import sys
import time
import traceback
import uuid


class Context:
    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = os.environ["REHEARSAL_FUNCTION_ARN"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException) -> dict:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main() -> int:
    task_root, handler_name, log_file = sys.argv[1:4]
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    log = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (the process's lifetime)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    sys.path.insert(0, task_root)
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        init_error = None
    except Exception as exc:  # an init error fails every invocation, as in Lambda
        handler, init_error = None, _error(exc)
    timeout = int(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))
    for line in sys.stdin:
        event = json.loads(line)
        if init_error is not None:
            outcome = init_error
        else:
            try:
                outcome = {"result": handler(event, Context(time.time() + timeout))}
            except Exception as exc:
                outcome = _error(exc)
        log.flush()
        answers.write(json.dumps(outcome, default=str) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
