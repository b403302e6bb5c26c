#!/usr/bin/env bash
# Build cost, side by side: cold release builds (an empty target dir each, `cargo build
# --release -j2 --locked`, sources already downloaded) of what a new user builds first.
#
#   bash bench/build/run.sh [case...]
#
# Cases (default: all, in this order):
#   axum        bench/build/axum-hello: axum's hello world (axum defaults, tokio `full`)
#   quickstart  examples/quickstart (tomodachi `http` + `schedule`)
#   sqs-bare    bench/build/sqs-consumer: a bare aws-sdk-sqs consumer (the SDK's lean features)
#   sqs-queue   examples/sqs_queue on the facade (tomodachi `sqs`: queues only, no SNS;
#               rustls with aws-lc-rs): like for like with sqs-bare
#   sqs         examples/sqs_service on the facade (tomodachi `sns`: SNS topics + SQS,
#               rustls with aws-lc-rs)
#   sqs-ring    the same with `rustls-ring` instead (no aws-lc-sys)
#
# Prints, per case, the wall time, the CPU time of cargo and every compiler it ran (user +
# system, children included), the number of crates compiled (cargo's `Compiling` lines) and
# the load average before and after. Wall times move with the machine's load; CPU times
# much less, and crate counts are exact: compare those. BENCH_BUILD_JOBS (default 2).
# BENCH_BUILD_TIMINGS=<dir>: also pass `--timings` and keep each case's report there
# (<dir>/<case>.html): which crates took the longest.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
cd -- "$root"

cases=("$@")
((${#cases[@]})) || cases=(axum quickstart sqs-bare sqs-queue sqs sqs-ring)
jobs=${BENCH_BUILD_JOBS:-2}
timings=${BENCH_BUILD_TIMINGS:-}
timings_arg=()
if [[ -n $timings ]]; then
    mkdir -p -- "$timings"
    timings=$(cd -- "$timings" && pwd)
    timings_arg=(--timings)
fi
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS

cargo fetch --locked -q

printf '%-11s %7s %7s %7s  %-16s %-16s %s\n' case wall_s cpu_s crates load_before load_after command
for case in "${cases[@]}"; do
    case $case in
    axum) args=(-p bench-build-axum) ;;
    quickstart) args=(-p tomodachi-examples --example quickstart) ;;
    sqs-bare) args=(-p bench-build-sqs) ;;
    sqs-queue) args=(-p tomodachi-examples --no-default-features --features sqs,rustls --example sqs_queue) ;;
    sqs) args=(-p tomodachi-examples --no-default-features --features sns,rustls --example sqs_service) ;;
    sqs-ring) args=(-p tomodachi-examples --no-default-features --features sns,rustls-ring --example sqs_service) ;;
    *)
        echo "bench/build: unknown case $case" >&2
        exit 2
        ;;
    esac
    target="$work/target-$case"
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    if ! CARGO_TARGET_DIR=$target /usr/bin/time -f '%e %U %S' -o "$work/$case.time" \
        cargo build --release --locked -j "$jobs" "${timings_arg[@]}" "${args[@]}" >"$work/$case.log" 2>&1; then
        cat "$work/$case.log" >&2
        exit 1
    fi
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    read -r wall user system <"$work/$case.time"
    crates=$(grep -c '^ *Compiling ' "$work/$case.log" || true)
    printf '%-11s %7.1f %7.1f %7d  %-16s %-16s %s\n' "$case" "$wall" "$(awk "BEGIN { print $user + $system }")" \
        "$crates" "$load_before" "$load_after" "cargo build --release --locked -j $jobs ${args[*]}"
    if [[ -n $timings ]]; then
        cp -- "$target/cargo-timings/cargo-timing.html" "$timings/$case.html"
    fi
    rm -rf -- "$target"
done
