"""The S3 rule the approvals ledger depends on and moto 5.2.5 does not enforce.

A conditional PutObject (`If-None-Match: *`) is atomic in S3: of two concurrent writes of the
same new key, exactly one succeeds and the other gets 412 PreconditionFailed (or 409
ConditionalRequestConflict). moto checks "does the key exist" and then writes, with no lock in
between, so under concurrent requests both writes could succeed and two approvers would take
the same slot. Here every PutObject runs under one lock: the check and the write are one step.

Loaded by `serve.py` beside this file.
"""

import threading

from moto.s3.responses import S3Response

_lock = threading.Lock()
_put_object = S3Response.put_object


def put_object(self):
    with _lock:
        return _put_object(self)


S3Response.put_object = put_object
