#!/usr/bin/env bash
# Offline Bazel wrapper for tfrobust; called by the Makefile:
#   tools/bazel/run.sh build [bazel args / targets]   -> bazel build //...
#   tools/bazel/run.sh test  [bazel args / targets]   -> bazel test //... --test_output=errors
#   tools/bazel/run.sh <other bazel command> [args]   -> passed through (query, run, clean, ...)
# Targets default to //... when none are given (pass flags as --flag=value), e.g.
#   tools/bazel/run.sh test //:tests_data_test_idx --test_arg=-x
# Needs the project virtualenv at <repo>/.venv (`make install`); it becomes the
# Python toolchain through tools/bazel/venv.bzl (override: TFROBUST_PYTHON=/abs/python).
# Environment: BAZEL (default: bazel).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

bazel="${BAZEL:-bazel}"

if [[ -z "${TFROBUST_PYTHON:-}" && ! -x .venv/bin/python ]]; then
    echo "tools/bazel/run.sh: $repo_root/.venv/bin/python not found; create the virtualenv first (make install)." >&2
    exit 1
fi

if [[ $# -lt 1 ]]; then
    sed -n '2,10p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi

cmd="$1"
shift

# Default to //... unless a target pattern was given (a non-flag argument).
with_default_targets() {
    local arg
    for arg in "$@"; do
        [[ "$arg" == -* ]] || { printf '%s\0' "$@"; return; }
    done
    printf '%s\0' "$@" "//..."
}

case "$cmd" in
    build)
        mapfile -d '' args < <(with_default_targets "$@")
        exec "$bazel" build "${args[@]}"
        ;;
    test)
        mapfile -d '' args < <(with_default_targets "$@")
        exec "$bazel" test --test_output=errors "${args[@]}"
        ;;
    *)
        exec "$bazel" "$cmd" "$@"
        ;;
esac
