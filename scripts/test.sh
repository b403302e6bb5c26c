#!/usr/bin/env bash
# The test command of tomodachi-rs:
#
#   bash scripts/test.sh                      # every crate, every feature
#   bash scripts/test.sh -p tomodachi-core    # extra arguments go to `cargo test`
#   bash scripts/test.sh -- --nocapture
#
# Sets up what the tests talk to (scripts/test-env.sh: Python venvs, moto, RabbitMQ), runs
# `cargo test` with a bounded overall time, prints a summary and exits non-zero on any failure.
# A broker that cannot be reached is a failure, never a skip. moto (both servers) is stopped on
# exit if this run started it and no other run of this script is using it.
#
# Environment: CARGO_TARGET_DIR (default $TOMODACHI_RS_CACHE/target, outside the clone),
# TOMODACHI_RS_TEST_TIMEOUT (seconds for the whole cargo run, default 3600).
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$root"

# shellcheck source=scripts/test-env.sh
if ! source scripts/test-env.sh; then
    echo "test.sh: FAILED: the test environment (Python venvs, moto, RabbitMQ) is not available; see the messages above" >&2
    exit 1
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TOMODACHI_RS_CACHE/target}
limit=${TOMODACHI_RS_TEST_TIMEOUT:-3600}

# Every run holds a shared lock while it may use moto; the run that started moto stops it at
# the end only if it can take the lock exclusively (nobody else is testing against it).
exec {moto_users}>"$TOMODACHI_RS_CACHE/moto.users"
flock -s "$moto_users"
cleanup() {
    local started=()
    [[ ${TOMODACHI_RS_MOTO_STARTED:-0} == 1 ]] && started+=(moto)
    [[ ${TOMODACHI_RS_MOTO_DYNAMODB_STARTED:-0} == 1 ]] && started+=(moto-dynamodb)
    if ((${#started[@]})); then
        if flock -xn "$moto_users"; then
            tomodachi_rs_stop_moto "${started[@]}"
        else
            echo "test.sh: leaving ${started[*]} running: another test run uses it" >&2
        fi
    fi
}
trap cleanup EXIT

scope=(--workspace)
for arg in "$@"; do
    case $arg in
    --) break ;;
    -p | --package | --package=* | -p*) scope=() ;;
    esac
done

log=$(mktemp "$TOMODACHI_RS_CACHE/test-output-XXXXXX.log")
echo "test.sh: cargo test ${scope[*]} --all-features --no-fail-fast $* (target dir $CARGO_TARGET_DIR, limit ${limit}s, log $log)" >&2
# `timeout` runs cargo in a process group of its own: on Ctrl-C or SIGTERM the whole group
# (cargo and the test binaries) is stopped, not just this script.
timeout -k 30 "$limit" cargo test "${scope[@]}" --all-features --no-fail-fast "$@" >"$log" 2>&1 &
cargo_pid=$!
trap 'kill -TERM -- -"$cargo_pid" 2>/dev/null || true' INT TERM
tail -n +1 -f --pid="$cargo_pid" "$log" &
tail_pid=$!
status=0
wait "$cargo_pid" || status=$?
while kill -0 "$cargo_pid" 2>/dev/null; do
    # A signal interrupted `wait`; the trap stopped the group, so collect its real status.
    status=0
    wait "$cargo_pid" || status=$?
done
wait "$tail_pid" || true
trap - INT TERM

echo
echo "================ test summary ================"
awk '
    /^test result: / {
        binaries++
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) passed += $i
            if ($(i + 1) ~ /^failed/) failed += $i
            if ($(i + 1) ~ /^ignored/) ignored += $i
        }
    }
    END { printf "%d passed, %d failed, %d ignored in %d test binaries\n", passed, failed, ignored, binaries }
' "$log"
failures=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/  \1/' || true)
if [[ -n $failures ]]; then
    echo "failed tests:"
    echo "$failures"
fi
if ((status == 124 || status == 137)); then
    echo "test.sh: FAILED: cargo test did not finish within ${limit}s (TOMODACHI_RS_TEST_TIMEOUT)"
elif ((status != 0)); then
    echo "test.sh: FAILED (cargo test exit status $status; full output in $log)"
else
    echo "test.sh: all tests passed"
    rm -f -- "$log"
fi
exit "$status"
