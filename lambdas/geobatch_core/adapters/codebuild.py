"""CodeBuild + ECR image builder: a Function's image is the worker base plus its requirements.

The image tag is the Function's ``image_hash`` (a hash of its Python version and requirements),
so identical requirements share one image: ``existing_image`` finds it and no build starts. The
CodeBuild project (``stacks/image_build.py``) reads the ``GEOBATCH_*`` variables set here.

``parse_build_event`` turns an EventBridge "CodeBuild Build State Change" event into a
``BuildOutcome`` for the build_events Lambda.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from geobatch_core.adapters.aws_errors import THROTTLING, ErrorMap, error_code
from geobatch_core.build_names import (  # the buildspec in stacks/image_build.py reads them too
    TERMINAL_BUILD_STATUSES,
    VAR_BUNDLE_KEY,
    VAR_FUNCTION_ID,
    VAR_IMAGE_TAG,
    VAR_PYTHON,
    VAR_REQUIREMENTS,
)
from geobatch_core.records import FunctionRecord

if TYPE_CHECKING:
    from mypy_boto3_codebuild import CodeBuildClient
    from mypy_boto3_ecr import ECRClient

CODEBUILD_ERRORS = ErrorMap(
    "CodeBuild",
    throttled=THROTTLING | {"AccountLimitExceededException"},
    not_found=frozenset({"ResourceNotFoundException"}),
    rejected=frozenset({"InvalidInputException", "InvalidParameterException"}),
)
ECR_ERRORS = ErrorMap("ECR", not_found=frozenset({"RepositoryNotFoundException"}))


def encode_requirements(requirements: list[str] | None) -> str:
    """requirements.txt content, base64 so newlines and quotes survive an environment variable."""
    text = "\n".join(requirements or [])
    return base64.b64encode((text + "\n" if text else "").encode()).decode("ascii")


class CodeBuildImageBuilder:
    """``ports.ImageBuilder`` on CodeBuild (docker build + push) and ECR (image reuse)."""

    def __init__(
        self,
        codebuild_client: CodeBuildClient,
        ecr_client: ECRClient,
        *,
        project_name: str,
        repository_uri: str,
    ) -> None:
        self._codebuild = codebuild_client
        self._ecr = ecr_client
        self.project_name = project_name
        self.repository_uri = repository_uri.rstrip("/")
        # "<account>.dkr.ecr.<region>.amazonaws.com/<name>" -> registry id and repository name
        host, _, self.repository_name = self.repository_uri.partition("/")
        self.registry_id = host.split(".", 1)[0]

    def image_uri(self, image_hash: str) -> str:
        return f"{self.repository_uri}:{image_hash}"

    def existing_image(self, image_hash: str) -> str | None:
        """The image URI if ECR has the tag ``image_hash``, else None."""
        try:
            response = self._ecr.describe_images(
                registryId=self.registry_id,
                repositoryName=self.repository_name,
                imageIds=[{"imageTag": image_hash}],
            )
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ImageNotFoundException":
                return None
            raise ECR_ERRORS.error(exc, f"looking up image {image_hash}") from exc
        return self.image_uri(image_hash) if response.get("imageDetails") else None

    def start_build(self, function: FunctionRecord, *, bundle_key: str, image_hash: str) -> Mapping[str, Any]:
        """Start the image build; returns ``build_id`` and the ``image_uri`` it will push."""
        variables = {
            VAR_IMAGE_TAG: image_hash,
            VAR_REQUIREMENTS: encode_requirements(function.requirements),
            VAR_FUNCTION_ID: function.id,
            VAR_PYTHON: function.image or "python3.11",
            VAR_BUNDLE_KEY: bundle_key,
        }
        try:
            response = self._codebuild.start_build(
                projectName=self.project_name,
                environmentVariablesOverride=[
                    {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            raise CODEBUILD_ERRORS.error(exc, f"starting the image build of Function {function.id}") from exc
        return {"build_id": response["build"]["id"], "image_uri": self.image_uri(image_hash)}

    def build_outcomes(self, builds: Mapping[str, FunctionRecord]) -> dict[str, BuildOutcome]:
        """The outcome of each build (build id → Function), as BatchGetBuilds reports it now.

        For reconciling Functions whose build event never arrived: a build CodeBuild no longer knows
        comes back as a FAULT outcome (it can never finish), one still running is left out.
        """
        outcomes: dict[str, BuildOutcome] = {}
        ids = list(builds)
        for start in range(0, len(ids), 100):  # BatchGetBuilds takes at most 100 ids
            chunk = ids[start : start + 100]
            try:
                response = self._codebuild.batch_get_builds(ids=chunk)
            except (ClientError, BotoCoreError) as exc:
                raise CODEBUILD_ERRORS.error(exc, "reading the state of image builds") from exc
            for build in response.get("builds") or []:
                function = builds.get(str(build.get("id")))
                if function is not None and build.get("buildStatus") in TERMINAL_BUILD_STATUSES:
                    outcomes[str(build["id"])] = outcome_from_build(build, function)
            for missing in response.get("buildsNotFound") or []:
                function = builds.get(str(missing))
                if function is not None:
                    outcomes[str(missing)] = BuildOutcome(
                        build_id=str(missing),
                        status="FAULT",
                        function_id=function.id,
                        image_tag=function.image_hash,
                        project_name=self.project_name,
                        log_link=None,
                        log_group=None,
                        log_stream=None,
                        phase_failure="CodeBuild has no record of this build",
                    )
        return outcomes


_FAILED_PHASE = ("FAILED", "FAULT", "TIMED_OUT", "STOPPED", "CLIENT_ERROR")


def _phase_message(phase: Mapping[str, Any]) -> str:
    """The context of a failed phase (strings like "COMMAND_EXECUTION_ERROR: ..."), or its status."""
    context = [
        str(c.get("message", "")) if isinstance(c, Mapping) else str(c)
        for c in phase.get("phase-context") or []
    ]
    text = "; ".join(c for c in context if c.strip(" :"))
    return text or f"{phase.get('phase-type')} {phase.get('phase-status')}"


@dataclass(frozen=True)
class BuildOutcome:
    """What the build_events Lambda needs from a "CodeBuild Build State Change" event."""

    build_id: str
    status: str
    function_id: str | None
    image_tag: str | None
    project_name: str
    log_link: str | None
    log_group: str | None
    log_stream: str | None
    phase_failure: str | None  # context message of the first failed phase, if any

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_BUILD_STATUSES

    @property
    def failure_reason(self) -> str:
        """Why the Function is ``build_failed``, for its ``status_reason``."""
        what = _STATUS_REASONS.get(self.status, f"the image build ended {self.status}")
        return f"{what}: {self.phase_failure}" if self.phase_failure else what


_STATUS_REASONS = {
    "FAILED": "the image build failed",
    "STOPPED": "the image build was stopped",
    "FAULT": "the image build hit a CodeBuild service fault; save the Function again to retry",
    "TIMED_OUT": "the image build timed out (the project allows 60 minutes, 2 hours queued)",
}


def outcome_from_build(build: Mapping[str, Any], function: FunctionRecord) -> BuildOutcome:
    """A ``BuildOutcome`` from a BatchGetBuilds build (camelCase, unlike the event's detail)."""
    logs = build.get("logs") or {}
    failure = next(
        (
            "; ".join(str(c.get("message", "")) for c in phase.get("contexts") or [] if c.get("message"))
            or f"{phase.get('phaseType')} {phase.get('phaseStatus')}"
            for phase in build.get("phases") or []
            if phase.get("phaseStatus") in _FAILED_PHASE
        ),
        None,
    )
    return BuildOutcome(
        build_id=str(build.get("id", "")),
        status=str(build.get("buildStatus", "")),
        function_id=function.id,
        image_tag=function.image_hash,
        project_name=str(build.get("projectName", "")),
        log_link=logs.get("deepLink"),
        log_group=logs.get("groupName"),
        log_stream=logs.get("streamName"),
        phase_failure=failure,
    )


def parse_build_event(event: Mapping[str, Any]) -> BuildOutcome:
    """Parse an EventBridge ``aws.codebuild`` "CodeBuild Build State Change" event.

    The Function id and image tag come from the build's environment variables, which the event
    repeats in ``detail.additional-information.environment.environment-variables``. Raises
    ``ValueError`` for any other event.
    """
    if event.get("source") != "aws.codebuild" or event.get("detail-type") != "CodeBuild Build State Change":
        raise ValueError(
            f"not a CodeBuild Build State Change event: {event.get('source')}/{event.get('detail-type')}"
        )
    detail = event.get("detail") or {}
    info = detail.get("additional-information") or {}
    variables = {
        v.get("name"): v.get("value")
        for v in (info.get("environment") or {}).get("environment-variables") or []
    }
    logs = info.get("logs") or {}
    failure = next(
        (
            _phase_message(phase)
            for phase in info.get("phases") or []
            if phase.get("phase-status") in _FAILED_PHASE
        ),
        None,
    )
    return BuildOutcome(
        build_id=str(detail.get("build-id", "")),
        status=str(detail.get("build-status", "")),
        function_id=variables.get(VAR_FUNCTION_ID),
        image_tag=variables.get(VAR_IMAGE_TAG),
        project_name=str(detail.get("project-name", "")),
        log_link=logs.get("deep-link"),
        log_group=logs.get("group-name"),
        log_stream=logs.get("stream-name"),
        phase_failure=failure,
    )
