#!/usr/bin/env python3
"""Runs benches/representative.asl.json on moto's executor and prints state transitions per
second, for the Rust bench's ratio. Tasks become Pass states (moto cannot invoke Lambda) and so
do Waits (moto sleeps for real; comparing against that would only measure the virtual clock).
Usage: moto_transitions.py DEFINITION RUNS"""
import json
import logging
import sys
import time

import boto3
from moto import mock_aws

logging.disable(logging.CRITICAL)


def detask(v):
    if isinstance(v, dict):
        if v.get("Type") in ("Task", "Wait"):
            p = {k: v[k] for k in ("Next", "End", "ResultPath") if k in v}
            p.update({"Type": "Pass", "Parameters": {"Payload.$": "$"}})
            return p
        return {k: detask(x) for k, x in v.items()}
    if isinstance(v, list):
        return [detask(x) for x in v]
    return v


def main():
    definition = detask(json.load(open(sys.argv[1])))
    runs = int(sys.argv[2])
    transitions = 0
    elapsed = 0.0
    for _ in range(runs):
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            sfn = boto3.client("stepfunctions", region_name="us-east-1")
            arn = sfn.create_state_machine(name="bench", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
            t0 = time.perf_counter()
            ex = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
            while sfn.describe_execution(executionArn=ex)["status"] == "RUNNING":
                time.sleep(0.001)
            elapsed += time.perf_counter() - t0
            events = sfn.get_execution_history(executionArn=ex, maxResults=1000)["events"]
            transitions += sum(1 for e in events if e["type"].endswith("StateEntered"))
    print(f"{transitions / elapsed:.1f}")


if __name__ == "__main__":
    main()
