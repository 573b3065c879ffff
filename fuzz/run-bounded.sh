#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 20), one after another, and fails on the
# first crash, panic (a broken invariant), hang or out-of-memory. Skips, successfully, when
# cargo-fuzz is not installed. New inputs go to a scratch folder: the committed corpora are
# only read. A crash is saved under fuzz/artifacts/<target>/ (see fuzz/README.md).
#
#   fuzz/run-bounded.sh [SECONDS]
set -euo pipefail

seconds="${1:-20}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run-bounded.sh: cargo-fuzz is not installed (cargo install cargo-fuzz); skipping" >&2
    exit 0
fi

# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them. Our code forbids unsafe, so the address sanitizer adds cost and no checks:
# build without it, but with debug assertions and overflow checks.
export RUSTC_BOOTSTRAP=1
flags=(--fuzz-dir "$fuzz_dir" --sanitizer none --debug-assertions)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build "${flags[@]}"
for target in $(cargo fuzz list --fuzz-dir "$fuzz_dir"); do
    echo "fuzz/run-bounded.sh: $target for ${seconds}s"
    mkdir -p "$scratch/$target"
    # -timeout: one input running longer than 10 s is a hang; -rss_limit_mb: out-of-memory.
    if ! nice -n 10 cargo fuzz run "${flags[@]}" "$target" \
        "$scratch/$target" "$fuzz_dir/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        tail -n 60 "$scratch/$target.log" >&2
        echo "fuzz/run-bounded.sh: $target FAILED; the input is in $fuzz_dir/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units' "$scratch/$target.log" || true
done
echo "fuzz/run-bounded.sh: every target ran ${seconds}s without a crash"
