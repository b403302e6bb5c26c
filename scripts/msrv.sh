#!/usr/bin/env bash
# The MSRV check of tomodachi-rs (a step of .ci/run):
#
#   bash scripts/msrv.sh
#
# Each publishable crate declares a `rust-version` (the workspace's, or its own where its
# dependencies need more: see README.md, "Minimum supported Rust version"). Only one toolchain
# can be installed on the build machines, so the check is in three parts:
#
# 1. every normal and build dependency of the crate, as locked in Cargo.lock, declares a
#    `rust-version` no higher than the crate's (a dependency that needs a newer compiler
#    raises our floor: this is what decides it today);
# 2. the crate's code uses no std API newer than its `rust-version` (clippy's
#    `incompatible_msrv`, which reads `rust-version`); language features (let chains: 1.88)
#    are covered by the floor being above them;
# 3. when a toolchain of exactly that version is installed (`rustup toolchain list`), the
#    crate is also built with it; otherwise a notice says it was not.
set -euo pipefail

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$root"

metadata=$(mktemp)
trap 'rm -f -- "$metadata"' EXIT
cargo metadata --format-version 1 --locked >"$metadata"

# "<crate> <rust-version>" for each publishable workspace crate; fails on a dependency above it.
crates=$(
    python3 - "$metadata" <<'PY'
import json
import sys

meta = json.load(open(sys.argv[1]))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}


def version(text):
    return tuple(int(part) for part in text.split(".")) + (0,) * (3 - len(text.split(".")))


failed = False
for member in meta["workspace_members"]:
    package = packages[member]
    if package.get("publish") == []:
        continue
    declared = package.get("rust_version")
    if not declared:
        print(f"msrv: {package['name']} declares no rust-version", file=sys.stderr)
        failed = True
        continue
    # Another crate of this workspace is checked on its own; an optional one may need more
    # (the facade's `sqs` feature needs tomodachi-sqs's rust-version), a required one may not.
    optional = {dep["name"] for dep in package["dependencies"] if dep.get("optional")}
    seen, stack, above = set(), [member], []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node != member and node in meta["workspace_members"]:
            if packages[node]["name"] in optional:
                continue
        for dep in nodes[node]["deps"]:
            if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    seen -= {n for n in seen if n != member and n in meta["workspace_members"] and packages[n]["name"] in optional}
    for node in seen - {member}:
        needed = packages[node].get("rust_version")
        if needed and version(needed) > version(declared):
            above.append(f"{packages[node]['name']} {packages[node]['version']} (rust-version {needed})")
    if above:
        failed = True
        print(
            f"msrv: {package['name']} declares rust-version {declared}, but its locked dependencies need more: "
            + ", ".join(sorted(above)),
            file=sys.stderr,
        )
    print(package["name"], declared)
sys.exit(1 if failed else 0)
PY
)
echo "msrv: every locked dependency fits the declared rust-version:"
printf '  %s\n' "${crates//$'\n'/$'\n'  }"

packages=()
while read -r name _; do packages+=(-p "$name"); done <<<"$crates"

echo "msrv: std APIs newer than rust-version (clippy::incompatible_msrv)"
cargo clippy "${packages[@]}" --all-features --lib -- -D clippy::incompatible_msrv

installed=$(rustup toolchain list 2>/dev/null || true)
for version in $(awk '{print $2}' <<<"$crates" | sort -u); do
    toolchain=$(grep -E "^${version//./\\.}(\.0)?-" <<<"$installed" | head -n 1 | awk '{print $1}' || true)
    members=()
    while read -r name declared; do
        [[ $declared == "$version" ]] && members+=(-p "$name")
    done <<<"$crates"
    if [[ -n $toolchain ]]; then
        echo "msrv: building ${members[*]} with $toolchain"
        cargo "+$toolchain" check "${members[@]}" --all-features --locked
    else
        echo "msrv: notice: no Rust $version toolchain installed (only: $(awk '{print $1}' <<<"$installed" | paste -sd ' ')); ${members[*]} checked with $(rustc --version) through the two checks above, not built with $version"
    fi
done
