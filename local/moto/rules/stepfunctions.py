"""The Step Functions rules the approval page depends on and moto 5.2.5 does not enforce.

StopExecution is synchronous on AWS: the execution is ABORTED when the call returns. moto
signals its worker and leaves the execution RUNNING while a task waits for its token (until
the wait ends), so here a stop marks the execution ABORTED at once, with its stop date.

On AWS a task token dies with its execution: SendTaskSuccess, SendTaskFailure and
SendTaskHeartbeat for a task of an execution that was stopped, failed, timed out or finished
answer `TaskTimedOut` ("the task ... has already been closed"). moto keeps a stopped
execution's waiting callback in its pool and accepts the answer (SendTaskFailure even looks
through every execution, running or not), so a link from a stopped rollback's email would
"approve" it. Here an answer for a token whose execution is no longer RUNNING is refused the
way AWS refuses it.

Loaded by `serve.py` beside this file.
"""

import datetime

from moto.stepfunctions.parser.api import ExecutionStatus, TaskTimedOut
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_stop = Execution.stop


def _stop_now(self, stop_date, error, cause):
    _stop(self, stop_date, error, cause)
    if self.exec_status == ExecutionStatus.RUNNING:
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = stop_date or datetime.datetime.now(tz=datetime.timezone.utc)


Execution.stop = _stop_now


def _owner(backend, task_token):
    """The execution whose callback pool holds `task_token`, if any."""
    for machine in backend.state_machines:
        for execution in machine.executions:
            worker = getattr(execution, "exec_worker", None)
            env = getattr(worker, "env", None) if worker else None
            pool = getattr(env, "callback_pool_manager", None) if env else None
            if pool is not None and pool.get(task_token) is not None:
                return execution
    return None


def _refuse_closed(backend, task_token):
    execution = _owner(backend, task_token)
    status = getattr(execution, "exec_status", None)
    if execution is not None and status not in (None, ExecutionStatus.RUNNING):
        raise TaskTimedOut(
            f"Task Timed Out: the execution is {getattr(status, 'value', status)}",
            "TaskTimedOut",
        )


def _guarded(name):
    original = getattr(StepFunctionsParserBackend, name)

    def answer(self, task_token, *args, **kwargs):
        _refuse_closed(self, task_token)
        return original(self, task_token, *args, **kwargs)

    answer.__name__ = name
    setattr(StepFunctionsParserBackend, name, answer)


for _name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
    _guarded(_name)
