"""A Python Lambda function as it is usually written, for the cold-start comparison.

A custom-runtime loop over urllib (no awslambdaric, so the runtime adds nothing of its own),
with what a real handler does at init: import boto3 at module level and build its client
outside the handler. It speaks the same Runtime API as the Rust functions, so both are timed
the same way: from exec to the first GET /invocation/next.
"""

import json
import os
import sys
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, body, headers=None):
    request = urllib.request.Request(API + path, data=body, headers=headers or {}, method="POST")
    with urllib.request.urlopen(request) as answer:
        answer.read()


try:
    import boto3

    # Built once per cold start, as AWS recommends; no network call until first use.
    RDS = boto3.client("rds")
except Exception as error:  # reported like the managed runtime does, then exit
    post(
        "/init/error",
        json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": str(error)}).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    sys.exit(1)


class InvalidInput(Exception):
    pass


def handler(event, context):
    if not isinstance(event, dict) or "action" not in event:
        raise InvalidInput("the input has no action")
    return {"action": event["action"], "echo": event}


def main():
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as answer:  # long poll
            request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(answer.read())
        try:
            body = json.dumps(handler(event, None)).encode()
            post(f"/invocation/{request_id}/response", body)
        except InvalidInput as error:
            body = json.dumps({"errorType": "Rollback.InvalidInput", "errorMessage": str(error)})
            post(
                f"/invocation/{request_id}/error",
                body.encode(),
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            )


if __name__ == "__main__":
    main()
