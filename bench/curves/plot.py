"""Draws the cost curves of bench/curves/run.sh and prints their tables (Markdown).

    python plot.py <results dir (the *.jsonl of run.sh)> <output dir for the PNGs>

Needs matplotlib (run.sh plot makes a venv of its own for it).
"""

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGET_BYTES_PER_CONNECTION = 16 * 1024


def rows(directory, name):
    path = Path(directory) / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def size_label(size):
    return f"{size // 1048576} MB" if size >= 1048576 else f"{size // 1024} KB"


def rss(results, out):
    data = rows(results, "rss")
    if not data:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    print("| server | held | connections | RSS before | RSS held | bytes per connection | ≤ 16 KB |")
    print("|---|---|---:|---:|---:|---:|:---:|")
    for server in ("tomodachi", "axum"):
        for kind in ("http", "ws"):
            points = [r for r in data if r["server"] == server and r["kind"] == kind]
            if not points:
                continue
            points.sort(key=lambda r: r["connections"])
            label = f"{server}, {'keep-alive connections' if kind == 'http' else 'WebSockets'}"
            ax.plot(
                [r["connections"] for r in points],
                [r["rss_kb"] / 1024 for r in points],
                marker="o",
                linestyle="-" if kind == "http" else "--",
                label=label,
            )
            for r in points:
                n = r["connections"]
                per = (r["rss_kb"] - r["rss_before_kb"]) * 1024 / n if n else None
                mark = "" if per is None else ("✓" if per <= TARGET_BYTES_PER_CONNECTION else "✗")
                per_text = "" if per is None else f"{per / 1024:.1f} KB"
                print(
                    f"| {server} | {'keep-alive' if kind == 'http' else 'WebSocket'} | {n} "
                    f"| {r['rss_before_kb'] / 1024:.1f} MB | {r['rss_kb'] / 1024:.1f} MB | {per_text} | {mark} |"
                )
    before = [r for r in rows(results, "rss-before") if r["server"] == "tomodachi" and r["kind"] == "ws"]
    if before:
        before.sort(key=lambda r: r["connections"])
        ax.plot([r["connections"] for r in before], [r["rss_kb"] / 1024 for r in before], marker="x",
                linestyle=":", label="tomodachi, WebSockets, before the fix (128 KiB read buffer)")
    xs = [0, 10000]
    ax.set_xlabel("idle connections held")
    ax.set_ylabel("server RSS (MB)")
    ax.set_title("RSS against open connections (loopback, release builds)")
    ax.grid(True, alpha=0.3)
    # The 16 KB-per-connection target from tomodachi's idle RSS.
    base = [r["rss_before_kb"] for r in data if r["server"] == "tomodachi" and r["connections"] == 0]
    if base:
        b = statistics.median(base) / 1024
        ax.plot(xs, [b, b + 10000 * TARGET_BYTES_PER_CONNECTION / 1048576], ":", color="grey",
                label="target: 16 KB per connection")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(out) / "rss.png", dpi=110)
    print()


def cpu(results, out):
    data = rows(results, "cpu")
    envelope = rows(results, "envelope")
    if not data and not envelope:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if data:
        print("| server | body | requests | req/s (client) | server CPU per request | ratio to axum |")
        print("|---|---:|---:|---:|---:|---:|")
        sizes = sorted({r["bytes"] for r in data})
        medians = {}
        for server in ("tomodachi", "axum"):
            for size in sizes:
                samples = [r for r in data if r["server"] == server and r["bytes"] == size]
                if samples:
                    medians[server, size] = (
                        statistics.median(r["cpu_us_per_request"] for r in samples),
                        statistics.median(r["rate"] for r in samples),
                        samples[0]["requests"],
                    )
        for server in ("tomodachi", "axum"):
            got = [s for s in sizes if (server, s) in medians]
            ax.plot(got, [medians[server, s][0] for s in got], marker="o",
                    label=f"POST /echo, {server} (server CPU)")
            for s in got:
                us, rate, n = medians[server, s]
                base = medians.get(("axum", s))
                ratio = f"{us / base[0]:.2f}" if base else ""
                print(f"| {server} | {size_label(s)} | {n} | {rate:,.0f} | {us:,.1f} µs | {ratio} |")
        print()
    if envelope:
        envelope.sort(key=lambda r: r["bytes"])
        sizes = [r["bytes"] for r in envelope]
        styles = [("seal_us", "JsonEnvelope seal", "-"), ("open_us", "JsonEnvelope open", "-"),
                  ("serde_serialize_us", "serde_json to_string (baseline)", ":"),
                  ("serde_parse_us", "serde_json from_str (baseline)", ":")]
        for key, label, style in styles:
            ax.plot(sizes, [r[key] for r in envelope], marker=".", linestyle=style, label=label)
        print("| data | encoding | sealed | seal | open | serde_json to_string | serde_json from_str | seal / to_string | open / from_str |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in envelope:
            print(
                f"| {r['bytes']:,} B | {r['data_encoding']} | {r['sealed_bytes']:,} B | {r['seal_us']:,.1f} µs "
                f"| {r['open_us']:,.1f} µs | {r['serde_serialize_us']:,.1f} µs | {r['serde_parse_us']:,.1f} µs "
                f"| {r['seal_us'] / r['serde_serialize_us']:.2f} | {r['open_us'] / r['serde_parse_us']:.2f} |"
            )
        ax.axvline(60000, color="grey", linestyle="--", linewidth=0.8)
        print()
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("body / data size (bytes)")
    ax.set_ylabel("CPU per request or call (µs)")
    ax.set_title("CPU against body size (dashed line: compression from 60 000 chars)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(out) / "cpu.png", dpi=110)


def consume(results, out):
    data = rows(results, "consume")
    if not data:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    concurrency = sorted({r["concurrency"] for r in data})
    ax.plot(concurrency, [c / 0.010 for c in concurrency], ":", color="grey",
            label="ideal: concurrency / 10 ms")
    print("| broker | concurrency | messages | msgs/s | ideal | of ideal |")
    print("|---|---:|---:|---:|---:|---:|")
    series = {
        ("amqp", None): "AMQP (RabbitMQ)",
        ("sqs", "keepalive"): "SQS (moto on waitress, keep-alive)",
        ("sqs", "shared"): "SQS (moto's server, Connection: close)",
    }
    for (broker, endpoint), label in series.items():
        points = sorted((r for r in data if r["broker"] == broker
                         and (endpoint is None or r.get("endpoint", "shared") == endpoint)),
                        key=lambda r: r["concurrency"])
        if not points:
            continue
        ax.plot([r["concurrency"] for r in points], [r["rate"] for r in points], marker="o",
                linestyle="-" if endpoint != "shared" else "--", label=label)
        name = broker if endpoint is None else f"{broker} ({endpoint})"
        for r in points:
            print(f"| {name} | {r['concurrency']} | {r['messages']} | {r['rate']:,.0f} "
                  f"| {r['ideal']:,.0f} | {r['rate'] / r['ideal']:.0%} |")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("handler concurrency (prefetch / max_in_flight)")
    ax.set_ylabel("messages handled per second")
    ax.set_title("Consume throughput with a 10 ms handler")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(out) / "consume.png", dpi=110)
    print()


def main():
    results, out = sys.argv[1], sys.argv[2]
    rss(results, out)
    cpu(results, out)
    consume(results, out)


if __name__ == "__main__":
    main()
