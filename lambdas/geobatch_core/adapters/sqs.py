"""SQS adapter: per-Function job queues with a dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from geobatch.wire import errors
from geobatch_core.adapters.aws_errors import THROTTLING, ErrorMap
from geobatch_core.adapters.reachable import reachable
from geobatch_core.ports import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

ERRORS = ErrorMap(
    "SQS",
    throttled=THROTTLING | {"RequestThrottled", "OverLimit"},
    not_found=frozenset({"AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue", "QueueDoesNotExist"}),
    missing="the job queue is gone",
)


class SqsQueue:
    def __init__(self, client: SQSClient, *, kms_key: str | None = None):
        self._sqs = reachable(client, "SQS")
        self._kms_key = kms_key

    def _encryption(self) -> dict[QueueAttributeNameType, str]:
        if self._kms_key:
            return {"KmsMasterKeyId": self._kms_key}
        return {"SqsManagedSseEnabled": "true"}

    def _tls_only_policy(self, arn: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        )

    def create(self, name: str, *, max_receive_count: int, visibility_seconds: int) -> tuple[str, str]:
        try:
            dlq_url = self._sqs.create_queue(
                QueueName=f"{name}-dlq",
                Attributes={"MessageRetentionPeriod": str(14 * 86400), **self._encryption()},
            )["QueueUrl"]
            dlq_arn = self._sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            queue_url = self._sqs.create_queue(
                QueueName=name,
                Attributes={
                    "VisibilityTimeout": str(visibility_seconds),
                    "MessageRetentionPeriod": str(14 * 86400),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
                    ),
                    **self._encryption(),
                },
            )["QueueUrl"]
            queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            for url, arn in ((queue_url, queue_arn), (dlq_url, dlq_arn)):
                self._sqs.set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": self._tls_only_policy(arn)}
                )
        except ClientError as exc:
            raise ERRORS.error(exc, "create the job queue") from None
        return queue_url, dlq_url

    def delete(self, queue_url: str) -> None:
        try:
            self._sqs.delete_queue(QueueUrl=queue_url)
        except ClientError as exc:
            err = ERRORS.error(exc, "delete the job queue")
            if not isinstance(err, errors.NotFoundError):
                raise err from None

    def send_batch(self, queue_url: str, bodies: Sequence[str], *, delay_seconds: int = 0) -> None:
        for start in range(0, len(bodies), 10):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": body, "DelaySeconds": delay_seconds}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            for _ in range(5):
                try:
                    result = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
                except ClientError as exc:
                    raise ERRORS.error(exc, "queue jobs") from None
                failed = {f["Id"] for f in result.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            if entries:
                raise errors.ServiceError(f"SQS refused {len(entries)} messages; retry the same request")

    def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_seconds: int
    ) -> list[Message]:
        try:
            raw = self._sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(10, max_messages)),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except ClientError as exc:
            raise ERRORS.error(exc, "receive jobs") from None
        return [
            Message(
                message_id=m["MessageId"],
                receipt=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for m in raw.get("Messages", [])
        ]

    def delete_batch(self, queue_url: str, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), 10):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])
            ]
            try:
                self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            except ClientError as exc:
                raise ERRORS.error(exc, "acknowledge jobs") from None

    def change_visibility_batch(self, queue_url: str, entries: Sequence[tuple[str, int]]) -> None:
        for start in range(0, len(entries), 10):
            chunk: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": max(0, min(43200, int(s)))}
                for i, (r, s) in enumerate(entries[start : start + 10])
            ]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=chunk)
            except ClientError as exc:
                raise ERRORS.error(exc, "extend job leases") from None

    def depth(self, queue_url: str) -> tuple[int, int]:
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except ClientError as exc:
            raise ERRORS.error(exc, "read the queue depth") from None
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])
