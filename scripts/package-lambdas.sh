#!/usr/bin/env bash
# `make package`: the deployable Lambda artifacts, built by the real SAM CLI.
#
#   1. the Rust target for the chosen architecture: aarch64-unknown-linux-gnu (arm64, the
#      default), added with rustup when missing. Only if it cannot be added does it fall back to
#      x86_64 (the template's Architecture parameter), saying so; PACKAGE_ARCH=arm64|x86_64
#      chooses one explicitly (no fallback).
#   2. `sam build` of every function in infra/template.yaml (build method rust-cargolambda:
#      `cargo lambda build --release`, zig as the cross-linker), with aws-sam-cli, cargo-lambda
#      and ziglang pinned in requirements-package.txt and installed in .venv/package by the
#      Makefile. Cargo builds into target/package (PACKAGE_TARGET_DIR), not the workspace's
#      target/debug or target/release.
#   3. scripts/check-lambda-artifacts.py: each .aws-sam/build/<Function>/bootstrap is a Linux ELF
#      executable of that architecture, needs at most the runtime's glibc (provided.al2023: 2.34)
#      and zips to <= 8 MB; prints the sizes.
#   4. `sam validate --lint` (cfn-lint only: no AWS call, no credentials), then `sam validate`
#      (SAM's translator) offline.
#
# Not part of `make test`: release builds (LTO, one codegen unit) of eight binaries take tens of
# minutes on 2 cores. Exit 0: artifacts built and checked; 1: a step failed (it says which).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PACKAGE_VENV=${PACKAGE_VENV:-.venv/package}
PACKAGE_ARCH=${PACKAGE_ARCH:-}
export CARGO_TARGET_DIR=${PACKAGE_TARGET_DIR:-$ROOT/target/package}
# SAM's rust-cargolambda build method runs cargo-lambda from PATH, and cargo-lambda finds zig as
# `python3 -m ziglang`: the venv's bin directory goes first.
export PATH="$ROOT/$PACKAGE_VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
TEMPLATE=infra/template.yaml
BUILD_DIR=.aws-sam/build

say() { echo "package: $*"; }
fail() {
  echo "package: $*" >&2
  exit 1
}
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

for tool in sam cargo-lambda python3; do
  [[ -x $PACKAGE_VENV/bin/$tool ]] || fail "$PACKAGE_VENV/bin/$tool is missing: run \`make package\` (it installs requirements-package.txt)"
done

triple_of() {
  case $1 in
    arm64) echo aarch64-unknown-linux-gnu ;;
    x86_64) echo x86_64-unknown-linux-gnu ;;
  esac
}
# Installed when the toolchain's sysroot has the target's standard library (rustup or not).
has_target() { [[ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]]; }
ensure_target() {
  has_target "$1" && return 0
  command -v rustup >/dev/null || {
    echo "package: the Rust target $1 is not installed and there is no rustup to add it" >&2
    return 1
  }
  say "rustup target add $1"
  rustup target add "$1" && has_target "$1"
}

case $PACKAGE_ARCH in
  "" | arm64 | x86_64) ;;
  *) fail "PACKAGE_ARCH=$PACKAGE_ARCH: use arm64 or x86_64 (or leave it empty: arm64, else x86_64)" ;;
esac
if [[ -n $PACKAGE_ARCH ]]; then
  arch=$PACKAGE_ARCH
  ensure_target "$(triple_of "$arch")" || fail "cannot add the Rust target $(triple_of "$arch") for PACKAGE_ARCH=$arch (see above)"
else
  arch=arm64
  if ! ensure_target aarch64-unknown-linux-gnu; then
    cat >&2 <<'EOF'
package: *** the Rust target aarch64-unknown-linux-gnu cannot be added (see above), so the
package: *** functions are built for x86_64 instead of arm64 (Graviton). Deploy them as x86_64:
package: ***   add "Architecture=x86_64" to parameter_overrides in samconfig.toml before `sam deploy`
package: *** (a stack left at the default Architecture=arm64 cannot run x86_64 binaries).
package: *** To build arm64, fix `rustup target add aarch64-unknown-linux-gnu` and rerun `make package`.
EOF
    arch=x86_64
    ensure_target x86_64-unknown-linux-gnu || fail "cannot add the Rust target x86_64-unknown-linux-gnu either (see above)"
  fi
fi

say "architecture $arch ($(triple_of "$arch")); $(sam --version); $(cargo-lambda lambda --version); zig $(python3 -m ziglang version); $(rustc --version)"
say "cargo target dir $CARGO_TARGET_DIR"

# A fresh build directory, so the check sees only what this build produced. No SAM cache
# (--no-cached): its key hashes the whole CodeUri, here the repository with its target/;
# cargo's own incremental build in $CARGO_TARGET_DIR is the cache.
rm -rf "$BUILD_DIR"
start=$SECONDS
say "sam build --no-cached --parameter-overrides Architecture=$arch (every function; release builds take a while)"
sam build --no-cached --template-file "$TEMPLATE" --build-dir "$BUILD_DIR" \
  --parameter-overrides "Architecture=$arch" ||
  fail "sam build failed (above)"
build_time=$((SECONDS - start))
say "sam build took $(elapsed $build_time)"

python3 scripts/check-lambda-artifacts.py --arch "$arch" --template "$TEMPLATE" --build-dir "$BUILD_DIR" ||
  fail "artifact check failed (above)"

say "sam validate --lint --region us-east-1"
sam validate --lint --template-file "$TEMPLATE" --region us-east-1 || fail "sam validate --lint failed (above)"
# `--lint` is cfn-lint only; SAM's own translator (what `sam deploy` runs) catches what it does
# not, e.g. an Fn::If where SAM wants a string. Offline: dummy credentials, and an endpoint on a
# closed loopback port so that no call can leave the machine.
say "sam validate (SAM's translator, offline)"
AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_ENDPOINT_URL=http://127.0.0.1:9 \
  sam validate --template-file "$TEMPLATE" --region us-east-1 || fail "sam validate failed (above)"

say "done in $(elapsed $SECONDS) (sam build $(elapsed $build_time)): $BUILD_DIR, Architecture=$arch"
if [[ $arch != arm64 ]]; then
  say "deploy with Architecture=$arch in samconfig.toml's parameter_overrides (the template's default is arm64)"
fi
