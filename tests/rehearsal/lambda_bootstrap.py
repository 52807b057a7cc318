"""Runs one Lambda invocation the way the python3.11 runtime does (stdlib only: it runs in the
runtime interpreter). argv: task root, handler ("module.function"), event file, result file.

The task root (the unzipped code asset) comes first on sys.path, the runtime's own packages (boto3,
botocore) after it, as in Lambda. The result, or the error as Lambda reports it
(errorType/errorMessage/stackTrace), is written to the result file as JSON.
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


def main() -> int:
    task_root, handler_name, event_file, result_file = sys.argv[1:5]
    sys.path.insert(0, task_root)
    with open(event_file, encoding="utf-8") as source:
        event = json.load(source)
    deadline = time.time() + int(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        outcome = {"result": handler(event, Context(deadline))}
    except Exception as exc:  # reported like Lambda's runtime does
        outcome = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc),
        }
    with open(result_file, "w", encoding="utf-8") as out:
        json.dump(outcome, out, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
