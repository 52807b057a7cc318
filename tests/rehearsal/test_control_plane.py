"""2. The stack's Lambdas, run from the synthesized asset in the runtime interpreter with their own
roles, take a Function from create to workers: API → bundle → build event → ready → submit → scaler."""

from __future__ import annotations

import json

import pytest

from tests.rehearsal import flow

# The first test of a session synthesizes (with bundling) and deploys: allow for a loaded machine.
pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def saved(cloud, stack, lambdas):
    project = stack.bridged_name("AWS::CodeBuild::Project")
    return flow.save_function(lambdas.api, lambdas.build_events, project, "rehearsal-double")


def test_the_build_event_makes_the_function_ready(saved):
    function, finished = saved
    assert finished.ok() == {"function_id": function.id, "status": "SUCCEEDED"}
    assert function.item["status"] == "ready", function.item


def test_the_function_gets_a_job_definition_and_a_worker_role_under_the_boundary(
    cloud, stack, saved, lambdas
):
    function, _ = saved
    environment = lambdas.api.environment
    definition = flow.job_definition(
        cloud, f"{environment['GEOBATCH_BATCH_JOB_DEFINITION_PREFIX']}-{function.id}"
    )
    container = definition["containerProperties"]
    role = cloud.client("iam").get_role(RoleName=container["jobRoleArn"].rsplit("/", 1)[-1])["Role"]
    assert (
        role["PermissionsBoundary"]["PermissionsBoundaryArn"]
        == environment["GEOBATCH_WORKER_PERMISSIONS_BOUNDARY"]
    )
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ecs-tasks.amazonaws.com"}]
    assert container["executionRoleArn"] == environment["GEOBATCH_WORKER_EXECUTION_ROLE_ARN"]
    values = {e["name"]: e["value"] for e in container["environment"]}
    assert values["GEOBATCH_FUNCTION_ID"] == function.id
    assert values["GEOBATCH_JOBS_TABLE"] == environment["GEOBATCH_JOBS_TABLE"]


def test_submit_then_the_scaler_starts_an_array_job_of_workers(cloud, saved, lambdas):
    function, _ = saved
    status, submitted = flow.api_call(
        lambdas.api,
        "POST",
        "/jobs/bulk",
        body={"function_id": function.id, "bulk_args": [[1], [2], [3]], "reference_id": "rehearsal-scale"},
    )
    assert status == 201, submitted
    # The API invokes the scaler asynchronously ({"function_id": ...}); here the test delivers it.
    scaled = lambdas.scaler.invoke({"function_id": function.id}).ok()
    assert scaled["started"][function.id] >= 1, scaled
    environment = lambdas.api.environment
    jobs = cloud.client("batch").list_jobs(
        jobQueue=environment["GEOBATCH_BATCH_JOB_QUEUE"],
        filters=[
            {
                "name": "JOB_DEFINITION",
                "values": [f"{environment['GEOBATCH_BATCH_JOB_DEFINITION_PREFIX']}-{function.id}*"],
            }
        ],
    )["jobSummaryList"]
    assert jobs, "the scaler submitted no Batch job"


def test_a_dead_worker_event_notes_it_and_wakes_the_scaler(cloud, saved, lambdas):
    function, _ = saved
    event = json.loads((flow.INFRA_EVENTS / "batch_job_child_oom.json").read_text())
    event["detail"]["jobQueue"] = lambdas.api.environment["GEOBATCH_BATCH_JOB_QUEUE"]
    for variable in event["detail"]["container"]["environment"]:
        if variable["name"] == "GEOBATCH_FUNCTION_ID":
            variable["value"] = function.id
    outcome = lambdas.batch_events.invoke(event).ok()
    assert outcome["function_id"] == function.id, outcome
    wakes = [
        d
        for d in cloud.decisions()
        if d["principal"] == lambdas.batch_events.role_arn and d["action"] == "lambda:InvokeFunction"
    ]
    assert wakes, "the batch-events Lambda did not try to wake the scaler"
    assert all(d["allowed"] for d in wakes), (
        "the batch-events Lambda may not invoke the scaler (its AccessDenied is swallowed, so a dead "
        f"worker is replaced only by the next scheduled tick): {wakes}"
    )


def test_the_control_plane_lambdas_are_never_denied(cloud, saved, lambdas):
    roles = {f.role_arn for f in (lambdas.api, lambdas.scaler, lambdas.build_events, lambdas.batch_events)}
    # Sessions named "probe" are the tests' own deliberate negative checks.
    denied = [
        d
        for d in cloud.decisions()
        if d["principal"] in roles and not d["allowed"] and d["session"] != "probe"
    ]
    assert denied == [], denied
