#!/usr/bin/env bash
# Feature isolation (a step of .ci/run): every publishable crate builds, without warnings,
# with each of its features alone, with its defaults and with none:
#
#   bash scripts/check-features.sh
#
# That is `cargo hack check --workspace --ignore-private --each-feature --no-dev-deps`;
# cargo-hack is installed from crates.io when missing (TOMODACHI_RS_CARGO_HACK_VERSION), and
# if that fails the same combinations are checked by a loop here. A warning in our crates
# (dead code behind a missing `cfg`, an unused import) fails the step: a user who turns on
# only that feature would see it.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$root"

version=${TOMODACHI_RS_CARGO_HACK_VERSION:-0.6.46}
log=$(mktemp)
trap 'rm -f -- "$log"' EXIT

if ! cargo hack --version >/dev/null 2>&1; then
    echo "check-features: installing cargo-hack $version from crates.io"
    cargo install cargo-hack --version "$version" --locked || true
fi

status=0
if cargo hack --version >/dev/null 2>&1; then
    # --no-dev-deps edits the manifests while it runs (cargo-hack restores them), so the lock
    # file changes under it: not --locked, and Cargo.lock is put back afterwards.
    cp -- Cargo.lock "$log.lock"
    cargo hack check --workspace --ignore-private --each-feature --no-dev-deps 2>&1 |
        tee "$log" || status=$?
    cp -- "$log.lock" Cargo.lock
    rm -f -- "$log.lock"
else
    echo "check-features: cargo-hack is not available; checking the same combinations one by one"
    combinations=$(
        cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if package.get("publish") == []:
        continue
    name = package["name"]
    print(name)
    print(name, "--no-default-features")
    for feature in sorted(package["features"]):
        if feature != "default":
            print(name, "--no-default-features", "--features", feature)
'
    )
    while read -r name args; do
        # Printed as cargo-hack does, so the warning scan below names the combination.
        echo "info: running \`cargo check -p $name $args\`" | tee -a "$log"
        # shellcheck disable=SC2086
        cargo check -p "$name" $args --locked 2>&1 | tee -a "$log" || status=$?
    done <<<"$combinations"
fi

warned=$(awk '
    /^info: running `cargo / { running = $0 }
    /^warning: `[^`]+` \([^)]*\) generated [0-9]+ warnings?/ { print running; print "  " $0 }
' "$log")
if [[ -n $warned ]]; then
    echo "check-features: FAILED: warnings with these feature combinations:" >&2
    echo "$warned" >&2
    status=1
fi
if ((status != 0)); then
    echo "check-features: FAILED" >&2
else
    echo "check-features: every feature of every publishable crate builds alone, without warnings"
fi
exit "$status"
