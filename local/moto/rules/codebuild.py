"""moto_server with the CodeBuild rules the infrastructure rollback depends on, and the CI runner.

The local stack must never be laxer than AWS. moto 5.2.5's CodeBuild ignores most of what the
rollback sends and answers every build as finished and green; CodeBuild does none of this:

- StartBuild honours `environmentVariablesOverride`: the build's
  `environment.environmentVariables` are the project's, overridden by name (moto keeps a fixed
  empty list). The build records its `sourceVersion` and the project's `source` and
  `environment`, and builds of a project are numbered 1, 2, ... (moto draws a random number).
- StartBuild honours `idempotencyToken`: "valid for 5 minutes. If you repeat the StartBuild
  request with the same token, but change a parameter, CodeBuild returns a parameter mismatch
  error." The same token with the same parameters within 5 minutes answers the build it
  started; with any other parameter (the whole request but the token is compared) it fails
  with InvalidInputException, the only client error StartBuild's API model has for a bad
  request (no dedicated mismatch code is documented). moto ignores the token and starts a
  second build: a retried StartBuild would have run `terraform apply` twice.
- A build takes time. Here it stays `buildStatus: IN_PROGRESS`, `currentPhase: BUILD` for
  BUILD_DESCRIBES BatchGetBuilds calls that include it (environment
  ROLLBACK_MOTO_BUILD_DESCRIBES, default 2; 0 completes it within StartBuild), a count rather
  than a time because the local engine's clock is virtual, and completes on the next one. Its
  phases are set once, when it completes (moto appends nine more on every call). StopBuild
  stops a build that has not completed.
- BatchGetBuilds answers the builds in the order asked and lists unknown ids in
  `buildsNotFound` (moto answers in its own order and drops them silently).
- ListBuildsForProject lists newest first (`sortOrder` DESCENDING is CodeBuild's default;
  ASCENDING is honoured) in pages of 100 with `nextToken` (moto: oldest first, one page).

The CI runner. A build's outcome is not drawn: at completion this module plays the part of the
team's Terraform project running `infra/terraform/buildspec.yml`, against moto's own S3 in
process. `local/moto/src/ci_runner.rs` writes the objects it reads; keep the two in step.

- The environment (PLAINTEXT variables only, as the buildspec sees them): ROLLBACK_TF_ACTION
  plan|apply, ROLLBACK_ARTIFACT_BUCKET, ROLLBACK_PLAN_KEY (a key prefix), ROLLBACK_PLAN_SHA256
  (apply). A missing or invalid action, bucket or key fails the build in PRE_BUILD, as the
  buildspec's pre_build exits 2, and an apply without ROLLBACK_PLAN_SHA256 fails in BUILD;
  nothing is written.
- The scenario: `s3://$BUCKET/.ci-runner/<sourceVersion>/plan.json` is what `terraform show
  -json` prints for a plan of that commit; `s3://$BUCKET/.ci-runner/state.json` ({"serial": n},
  absent = 0) stands for the Terraform state.
- plan: without the scenario object the commit cannot be planned: FAILED, nothing written.
  Else it writes `$KEY/plan.tfplan` (a small JSON document of the commit, the state serial and
  the plan JSON's SHA-256, so the saved plan's bytes change with each), `$KEY/plan.json` (the
  scenario bytes) and `$KEY/plan.sha256` (hex SHA-256 of plan.tfplan and a newline, as
  `sha256sum | cut` writes it): SUCCEEDED.
- apply, as the buildspec's apply branch: every result it writes is `$KEY/apply-result.json`,
  {"outcome", "detail", "plan_sha256": ROLLBACK_PLAN_SHA256}. A result there already saying
  "applied" with this plan_sha256: SUCCEEDED, nothing done (a re-run). No `$KEY/plan.tfplan`:
  FAILED with nothing written (`aws s3 cp` fails under `set -e`). Its SHA-256 is not
  ROLLBACK_PLAN_SHA256: "hash-mismatch", FAILED. Not a saved plan of this runner: "failed"
  (Terraform cannot load it), FAILED. Its serial is not the state's (someone applied since the
  plan was made): "stale", the detail Terraform's "Saved plan is stale" error, FAILED. Else the
  state serial goes up by one and "applied": SUCCEEDED.

moto_server serves requests on threads: every patched call runs under one lock.

Loaded by `serve.py` beside this file.
"""

import base64
import copy
import hashlib
import json
import os
import threading
import time

from moto.codebuild import models, responses
from moto.codebuild.exceptions import InvalidInputException, ResourceNotFoundException
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

BUILD_DESCRIBES = int(os.environ.get("ROLLBACK_MOTO_BUILD_DESCRIBES", "2"))
# "The token is included in the StartBuild request and is valid for 5 minutes."
TOKEN_SECONDS = 5 * 60
# ListBuildsForProject answers at most 100 ids a page.
PAGE_SIZE = 100

# Mirrors local/moto/src/ci_runner.rs.
SCENARIO_PREFIX = ".ci-runner"
PLAN_FORMAT = "rollback-ci-runner-plan"

_lock = threading.RLock()
# (backend id, build id) -> BatchGetBuilds calls left before the build completes
_pending = {}
# (backend id, token) -> (monotonic time, request fingerprint, build id)
_tokens = {}

_RUN_PHASES = [
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
]


def _find_build(backend, build_id):
    project = build_id.split(":", 1)[0]
    for build in backend.build_metadata_history.get(project, []):
        if build["id"] == build_id:
            return build
    return None


# ---------------------------------------------------------------------------------------------
# StartBuild


def _fingerprint(body):
    """The request's parameters but the token, in one canonical form."""
    try:
        params = json.loads(body or "{}")
    except ValueError:
        params = {}
    if not isinstance(params, dict):
        params = {}
    params.pop("idempotencyToken", None)
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def _variables(project_environment, overrides):
    """The project's environment variables, overridden by name, as CodeBuild reports them."""
    merged = {}
    for variable in list(project_environment.get("environmentVariables") or []) + list(
        overrides or []
    ):
        merged[variable["name"]] = {
            "name": variable["name"],
            "value": variable.get("value", ""),
            "type": variable.get("type") or "PLAINTEXT",
        }
    return list(merged.values())


def start_build(self):
    responses._validate_required_params_project_name(self._get_param("projectName"))
    name = self._get_param("projectName")
    backend = self.codebuild_backend
    if name not in backend.codebuild_projects:
        raise ResourceNotFoundException(
            f"Project cannot be found: arn:{get_partition(self.region)}:codebuild:"
            f"{self.region}:{self.current_account}:project/{name}"
        )
    token = self._get_param("idempotencyToken")
    fingerprint = _fingerprint(self.body)
    with _lock:
        if token:
            now = time.monotonic()
            for key in [k for k, v in _tokens.items() if now - v[0] >= TOKEN_SECONDS]:
                del _tokens[key]
            earlier = _tokens.get((id(backend), token))
            if earlier is not None:
                if earlier[1] != fingerprint:
                    raise InvalidInputException(
                        f"idempotencyToken {token} was used within the last 5 minutes by a "
                        "StartBuild request with different parameters (parameter mismatch)"
                    )
                build = _find_build(backend, earlier[2])
                if build is not None:
                    return ActionResult({"build": copy.deepcopy(build)})
        project = backend.codebuild_projects[name].project_metadata
        build = backend.start_build(
            name,
            self._get_param("sourceVersion") or project.get("sourceVersion"),
            self._get_param("artifactsOverride"),
        )
        build["buildNumber"] = len(backend.build_history[name])
        build["source"] = copy.deepcopy(project["source"])
        environment = copy.deepcopy(project["environment"])
        environment["environmentVariables"] = _variables(
            project["environment"], self._get_param("environmentVariablesOverride")
        )
        build["environment"] = environment
        if token:
            _tokens[(id(backend), token)] = (time.monotonic(), fingerprint, build["id"])
        if BUILD_DESCRIBES <= 0:
            _complete(backend, build)
        else:
            _pending[(id(backend), build["id"])] = BUILD_DESCRIBES
        return ActionResult({"build": copy.deepcopy(build)})


# ---------------------------------------------------------------------------------------------
# BatchGetBuilds, ListBuildsForProject, StopBuild


def batch_get_builds(self):
    ids = self._get_param("ids") or []
    if not ids or len(ids) > 100:
        raise InvalidInputException("ids must name between 1 and 100 builds")
    for build_id in ids:
        if ":" not in build_id:
            raise InvalidInputException("Invalid build ID provided")
    backend = self.codebuild_backend
    builds, not_found, seen = [], [], set()
    with _lock:
        for build_id in ids:
            if build_id in seen:
                continue
            seen.add(build_id)
            build = _find_build(backend, build_id)
            if build is None:
                not_found.append(build_id)
                continue
            _tick(backend, build)
            builds.append(copy.deepcopy(build))
    return ActionResult({"builds": builds, "buildsNotFound": not_found})


def _tick(backend, build):
    """One BatchGetBuilds call saw `build`: it runs on, or completes now."""
    key = (id(backend), build["id"])
    left = _pending.get(key)
    if left is None:
        return
    if left > 0:
        _pending[key] = left - 1
        build["currentPhase"] = "BUILD"
        return
    _complete(backend, build)


def list_builds_for_project(self):
    responses._validate_required_params_project_name(self._get_param("projectName"))
    name = self._get_param("projectName")
    backend = self.codebuild_backend
    if name not in backend.codebuild_projects:
        raise ResourceNotFoundException(
            f"The provided project arn:{get_partition(self.region)}:codebuild:{self.region}:"
            f"{self.current_account}:project/{name} does not exist"
        )
    order = self._get_param("sortOrder") or "DESCENDING"
    if order not in ("ASCENDING", "DESCENDING"):
        raise InvalidInputException(f"Invalid sort order: {order}")
    with _lock:
        ids = list(backend.build_history.get(name, []))
    if order == "DESCENDING":
        ids.reverse()
    start = 0
    token = self._get_param("nextToken")
    if token:
        try:
            start = ids.index(base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputException("Invalid next token")
    page = ids[start : start + PAGE_SIZE]
    answer = {"ids": page}
    if start + PAGE_SIZE < len(ids):
        answer["nextToken"] = base64.urlsafe_b64encode(ids[start + PAGE_SIZE].encode()).decode()
    return ActionResult(answer)


def stop_build(self):
    build_id = self._get_param("id")
    responses._validate_required_params_id(build_id, self.codebuild_backend.list_builds())
    backend = self.codebuild_backend
    with _lock:
        build = _find_build(backend, build_id)
        if _pending.pop((id(backend), build_id), None) is not None:
            _finish(build, "STOPPED", "BUILD", "STOPPED", None)
        return ActionResult({"build": copy.deepcopy(build)})


# ---------------------------------------------------------------------------------------------
# Completion: the CI runner


class _Failed(Exception):
    """The build fails in `phase` with `message` (what the buildspec would have printed)."""

    def __init__(self, phase, message):
        super().__init__(message)
        self.phase = phase
        self.message = message


def _complete(backend, build):
    _pending.pop((id(backend), build["id"]), None)
    try:
        _run_ci(backend, build)
    except _Failed as failure:
        _finish(build, "FAILED", failure.phase, "FAILED", failure.message)
        return
    _finish(build, "SUCCEEDED", None, None, None)


def _finish(build, status, last_phase, last_status, message):
    """Sets the build's phases once: all succeeded, or up to `last_phase` which ended in
    `last_status`, then the phases CodeBuild still runs after such an end."""
    now = iso_8601_datetime_with_milliseconds()
    phases = [p for p in build["phases"] if p["phaseType"] in ("SUBMITTED", "QUEUED")]
    for phase in phases:
        if phase["phaseType"] == "QUEUED":
            phase.update(phaseStatus="SUCCEEDED", endTime=now, durationInSeconds=0)
    if last_phase is None:
        ran = _RUN_PHASES
    else:
        ran = _RUN_PHASES[: _RUN_PHASES.index(last_phase) + 1]
        # A failed build phase still runs post_build; anything earlier goes to FINALIZING.
        ran += ["POST_BUILD", "UPLOAD_ARTIFACTS"] if last_phase == "BUILD" else []
        ran += ["FINALIZING"]
    for phase_type in ran:
        phase = {
            "phaseType": phase_type,
            "phaseStatus": "SUCCEEDED",
            "startTime": now,
            "endTime": now,
            "durationInSeconds": 0,
        }
        if phase_type == last_phase:
            phase["phaseStatus"] = last_status
            if message:
                phase["contexts"] = [
                    {"statusCode": "COMMAND_EXECUTION_ERROR", "message": message}
                ]
        phases.append(phase)
    phases.append({"phaseType": "COMPLETED", "startTime": now})
    build["phases"] = phases
    build["currentPhase"] = "COMPLETED"
    build["buildStatus"] = status
    build["buildComplete"] = True
    build["endTime"] = now


class _Bucket:
    """One S3 bucket of moto's, in process."""

    def __init__(self, backend, name):
        self.s3 = s3_backends[backend.account_id][get_partition(backend.region_name)]
        self.name = name

    def get(self, key):
        try:
            found = self.s3.get_object(self.name, key)
        except MissingBucket:
            raise _Failed("BUILD", f"NoSuchBucket: {self.name}")
        return None if found is None else found.value

    def put(self, key, value):
        try:
            self.s3.put_object(self.name, key, value)
        except MissingBucket:
            raise _Failed("BUILD", f"NoSuchBucket: {self.name}")


def _json(raw, what):
    try:
        return json.loads(raw)
    except ValueError:
        raise _Failed("BUILD", f"{what} is not JSON")


def _state_serial(bucket):
    raw = bucket.get(f"{SCENARIO_PREFIX}/state.json")
    if raw is None:
        return 0
    serial = _json(raw, "the Terraform state").get("serial", 0)
    if not isinstance(serial, int):
        raise _Failed("BUILD", "the Terraform state has no integer serial")
    return serial


def _run_ci(backend, build):
    env = {
        v["name"]: v.get("value", "")
        for v in build["environment"].get("environmentVariables") or []
        if (v.get("type") or "PLAINTEXT") == "PLAINTEXT"
    }
    action = env.get("ROLLBACK_TF_ACTION", "")
    if action not in ("plan", "apply"):
        raise _Failed("PRE_BUILD", f"ROLLBACK_TF_ACTION must be plan or apply, got '{action}'")
    for name in ("ROLLBACK_ARTIFACT_BUCKET", "ROLLBACK_PLAN_KEY"):
        if not env.get(name):
            raise _Failed("PRE_BUILD", f"{name} is not set")
    bucket = _Bucket(backend, env["ROLLBACK_ARTIFACT_BUCKET"])
    dest = env["ROLLBACK_PLAN_KEY"]
    if action == "plan":
        _plan(bucket, dest, build["sourceVersion"])
    else:
        _apply(bucket, dest, env.get("ROLLBACK_PLAN_SHA256", ""))


def _plan(bucket, dest, source_version):
    plan_json = bucket.get(f"{SCENARIO_PREFIX}/{source_version}/plan.json")
    if plan_json is None:
        raise _Failed("BUILD", f"terraform plan of {source_version} failed (no scenario)")
    saved = json.dumps(
        {
            "format": PLAN_FORMAT,
            "source_version": source_version,
            "serial": _state_serial(bucket),
            "plan_json_sha256": hashlib.sha256(plan_json).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    bucket.put(f"{dest}/plan.tfplan", saved)
    bucket.put(f"{dest}/plan.json", plan_json)
    bucket.put(f"{dest}/plan.sha256", (hashlib.sha256(saved).hexdigest() + "\n").encode())


APPLIED = "Apply complete! Resources: 0 added, 1 changed, 0 destroyed."
STALE = (
    "Error: Saved plan is stale\n\nThe given plan file can no longer be applied because the "
    "state was changed by another operation after the plan was created."
)


def _apply(bucket, dest, approved):
    if not approved:
        raise _Failed("BUILD", "ROLLBACK_PLAN_SHA256 (the approved plan's hash) is not set")
    result_key = f"{dest}/apply-result.json"

    def write_result(outcome, detail):
        result = {"outcome": outcome, "detail": detail, "plan_sha256": approved}
        bucket.put(result_key, json.dumps(result).encode())

    earlier = bucket.get(result_key)
    if earlier is not None:
        try:
            earlier = json.loads(earlier)
            if earlier.get("outcome") == "applied" and earlier.get("plan_sha256") == approved:
                return
        except (ValueError, AttributeError):
            pass
    saved = bucket.get(f"{dest}/plan.tfplan")
    if saved is None:
        raise _Failed("BUILD", f"download failed: s3://{bucket.name}/{dest}/plan.tfplan")
    actual = hashlib.sha256(saved).hexdigest()
    if actual != approved:
        message = (
            f"refusing to apply: the saved plan's SHA-256 is {actual}, "
            f"the approved plan's is {approved}"
        )
        write_result("hash-mismatch", message)
        raise _Failed("BUILD", f"ROLLBACK: {message}")
    try:
        plan = json.loads(saved)
    except ValueError:
        plan = None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        write_result("failed", "Error: Failed to load plan file")
        raise _Failed("BUILD", "Error: Failed to load plan file")
    serial = _state_serial(bucket)
    if plan.get("serial") != serial:
        write_result("stale", STALE)
        raise _Failed("BUILD", STALE)
    bucket.put(f"{SCENARIO_PREFIX}/state.json", json.dumps({"serial": serial + 1}).encode())
    write_result("applied", APPLIED)


# ---------------------------------------------------------------------------------------------


def _forget_on_reset():
    reset = models.CodeBuildBackend.reset

    def wrapped(self):
        with _lock:
            for store in (_pending, _tokens):
                for key in [k for k in store if k[0] == id(self)]:
                    del store[key]
        return reset(self)

    models.CodeBuildBackend.reset = wrapped


responses.CodeBuildResponse.start_build = start_build
responses.CodeBuildResponse.batch_get_builds = batch_get_builds
responses.CodeBuildResponse.list_builds_for_project = list_builds_for_project
responses.CodeBuildResponse.stop_build = stop_build
_forget_on_reset()
