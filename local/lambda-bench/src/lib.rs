//! Cold-start and package-size benchmark of the release Lambda binaries (issue 8,
//! "Performance": cold start and release binaries).
//!
//! Run it with `scripts/bench-lambdas.sh` (or `make bench`): it builds the functions with
//! the workspace release profile (`lto = true`, `codegen-units = 1`, `strip = true`,
//! `opt-level = 3`) and runs `lambda-bench`, which
//!
//! 1. zips each binary as `bootstrap` (the `provided.al2023` package) and prints its size
//!    next to the 8 MB target;
//! 2. starts each function, and a Python handler that imports boto3 and builds a client at
//!    init (`python/handler.py`, a plain urllib runtime loop with no `awslambdaric`), under
//!    a fresh local Lambda Runtime API ([`runtime_api`]) with the environment Lambda gives
//!    (dummy credentials, `AWS_ENDPOINT_URL=http://127.0.0.1:9` so nothing leaves the
//!    machine; the approval function's link key secret is in a local moto, though it reads it
//!    only on the first request with a link, and every function gets the decision key's ARN,
//!    as the template's Globals give it);
//! 3. times each start from just before fork/exec to the arrival of its first
//!    `GET /2018-06-01/runtime/invocation/next`, reads `VmHWM` at that moment (the init
//!    phase's peak RSS), hands it one invalid event (`{}`, answered with
//!    `Rollback.InvalidInput` without any AWS call; the approval page gets an HTTP API
//!    request without a link token), reads `VmHWM` again and stops it with SIGTERM
//!    (`ru_maxrss` is not used: Linux counts the parent's RSS at fork into it);
//! 4. prints median and p95 over the runs (functions interleaved round-robin, after a
//!    discarded warm-up round, so background load spreads evenly), the machine, and the
//!    ratios to Python against the targets (≤ 20 ms and ≤ 30 MB per function, ≥ 10×).
//!
//! `lambda-bench --help` lists the options (`--runs`, `--only`, `--enforce`, …). The
//! harness itself (server, measurement) is covered by `cargo test -p rollback-lambda-bench`
//! with the tiny `lambda-bench-echo` function and the Python handler, without release builds.

pub mod functions;
pub mod machine;
pub mod measure;
pub mod package;
pub mod runtime_api;
pub mod stats;
