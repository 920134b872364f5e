"""moto_server with the AWS rules the rollback depends on and moto 5.2.5 does not enforce.

The local stack must never be laxer than AWS. Each module beside this one patches moto where
it is: `rds.py` (asynchronous renames, no rename or create onto a taken identifier), `s3.py`
(conditional writes are atomic), `stepfunctions.py` (a task token dies with its execution),
`codebuild.py` (StartBuild honours environment overrides and
idempotency tokens, builds take several BatchGetBuilds calls to finish, and the CI runner plays
the Terraform buildspec against moto's S3).

Run as `python serve.py -H 127.0.0.1 -p PORT` (the same arguments as moto_server).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rds  # noqa: E402,F401  (patches moto on import)
import s3  # noqa: E402,F401
import codebuild  # noqa: E402,F401
import stepfunctions  # noqa: E402,F401

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
