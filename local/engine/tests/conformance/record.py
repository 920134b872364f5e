#!/usr/bin/env python3
"""Records the oracle outcome of every conformance case by running it on moto's ASL executor.

Usage: .venv/bin/python local/engine/tests/conformance/record.py [case-name ...]

Each case runs in a fresh `mock_aws` because one failed execution can poison moto's backend
for the next. Outcomes go to fixtures/<case>.json and are checked in, so `cargo test` needs no
Python. Known moto-vs-AWS differences live in divergences.json (not touched by this script).
"""
import json
import os
import sys
import time

import logging

import boto3
from moto import mock_aws

# moto logs every failed state with its whole parse tree; the fixture is what matters.
logging.disable(logging.CRITICAL)

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
FIXTURES = os.path.join(HERE, "fixtures")
ROLE = "arn:aws:iam::123456789012:role/sfn"


def run_case(case):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        sm = sfn.create_state_machine(name="case", definition=json.dumps(case["definition"]), roleArn=ROLE)
        ex = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input=json.dumps(case["input"]))
        deadline = time.time() + 60
        while True:
            d = sfn.describe_execution(executionArn=ex["executionArn"])
            if d["status"] != "RUNNING" or time.time() > deadline:
                break
            time.sleep(0.05)
        out = {"status": d["status"]}
        if "output" in d:
            try:
                out["output"] = json.loads(d["output"])
            except ValueError:
                # moto returns a bare string result without JSON-encoding it.
                out["output"] = d["output"]
                out["output_not_json_encoded"] = True
        for k in ("error", "cause"):
            if k in d:
                out[k] = d[k]
        return out


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    names = sys.argv[1:] or sorted(f[:-5] for f in os.listdir(CASES) if f.endswith(".json"))
    for name in names:
        with open(os.path.join(CASES, name + ".json")) as f:
            case = json.load(f)
        try:
            outcome = run_case(case)
        except Exception as e:  # a definition moto refuses is an outcome too
            outcome = {"status": "REJECTED", "error": type(e).__name__, "cause": str(e)}
        outcome = {"oracle": "moto 5.2.5 (stepfunctions.execute_state_machine)", **outcome}
        with open(os.path.join(FIXTURES, name + ".json"), "w") as f:
            json.dump(outcome, f, indent=2, sort_keys=True)
            f.write("\n")
        print(f"{name}: {outcome['status']} {outcome.get('error', '')}")


if __name__ == "__main__":
    main()
