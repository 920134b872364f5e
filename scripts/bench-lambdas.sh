#!/usr/bin/env bash
# Cold start (exec -> first /next), peak RSS and zipped size of every Lambda function, built
# with the workspace release profile, next to a Python handler that imports boto3.
# Not part of `make test` (release builds take minutes). Extra arguments go to lambda-bench,
# e.g. `scripts/bench-lambdas.sh --runs 50 --only plan,notify` or `--enforce`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO=${CARGO:-cargo}
PACKAGES=(
  rollback-plan rollback-snapshot rollback-restore rollback-retag rollback-deploy-undo
  rollback-infra rollback-smoke-test rollback-notify rollback-approval rollback-mobile
  rollback-lambda-bench
)

if [[ ! -x .venv/bin/python ]]; then
  echo "bench-lambdas: .venv/bin/python is missing; run \`make venv\` (boto3 and moto come with it)" >&2
  exit 2
fi

args=()
for p in "${PACKAGES[@]}"; do args+=(-p "$p"); done
echo "bench-lambdas: cargo build --release --bins ${args[*]}" >&2
"$CARGO" build --release --bins "${args[@]}"

exec "${CARGO_TARGET_DIR:-target}/release/lambda-bench" "$@"
