#!/usr/bin/env python3
"""Salon, Janus VideoRoom and the relay floor under the same load, side by side.

Run it through bench/run, which installs what is missing and builds the
release binary. For each scenario this steps the load up, and at every step
runs the same `salon loadtest` plan against each server still in the race:

  meeting   rooms of 4; every participant publishes audio and video and
            subscribes to the other three. Rooms are added step by step.
  webinar   one room: 1 publisher, subscribers added step by step.
  large     rooms of 50 (a Twilio group room's largest), everyone publishing
            audio and three-layer simulcast video (libwebrtc's layers of a
            720p camera: 150k/500k/1.5M) and subscribing to everyone else,
            under a grid bandwidth profile with a maxSubscriptionBitrate
            (LARGE_CAP). Rooms are added step by step. Salon only: the load
            tester's Janus target publishes one stream per camera (Janus's
            VideoRoom can relay simulcast, but the tester neither sends it
            to Janus nor asks VideoRoom for a substream, and VideoRoom has no
            per-subscriber bandwidth cap to respect), and the floor relays
            everything it gets.

Every step gets a fresh server pinned to --server-cpus (Salon with one media
worker; Janus with all its threads; the one-thread relay floor) and a load
generator pinned to --generator-cpus. A server leaves the race after the step
at which loss passed 1%, a subscription got no media, its CPU saturated, or
the generator's did. The steps of the three servers are interleaved, so a
slow drift of the machine touches all three alike.

Writes bench/results.md (tables, ratios, the targets of DESIGN.md checked)
and bench/results.json (every step's figures); the loadtest reports of the
run are kept in target/bench/.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ("salon", "janus", "floor")
NAMES = {"salon": "Salon", "janus": "Janus", "floor": "relay floor"}
SCENARIOS = {
    # scenario: (steps, what a step counts)
    "meeting": ([1, 2, 4, 8, 12, 16, 20, 24], "rooms of 4"),
    "webinar": ([25, 50, 100, 150, 200, 300, 400], "subscribers"),
    "large": ([1, 2, 3, 4], "rooms of 50"),
}
UNITS = {
    # scenario: (one, many) for "at N ..."
    "meeting": ("room of 4", "rooms of 4"),
    "webinar": ("subscriber", "subscribers"),
    "large": ("room of 50", "rooms of 50"),
}
QUICK = {"meeting": [1, 2], "webinar": [10, 25], "large": [1]}
# The large meeting's bandwidth profile: grid mode, and a video cap that
# holds all 49 quarter layers (49 × 150 kbit/s ≈ 7.4 Mbit/s) with room for
# a few half layers, so no track has to be switched off.
LARGE_CAP = "10M"
LARGE_MODE = "grid"
# What a room of 50 looks like from its seats: every subscriber shows the
# 49 others as tiles of a 7×7 grid in a 1920×1080 window and reports that
# size, as twilio-video's contentPreferencesMode 'auto' does (so each gets
# the quarter layer, the one that covers its tile); two people talk and the
# other 48 send Opus DTX silence, twilio-video's default.
LARGE_RENDER = "274x154"
LARGE_SPEAKERS = 2
# Which targets can run a scenario.
SCENARIO_TARGETS = {"large": ("salon",)}
LOSS_LIMIT_PCT = 1.0
SATURATED = 0.95  # of one core: ends the race
# "Below saturation" for the no-loss target: both CPUs under this. A
# saturated process reads a little under 1.0 from /proc, and the loss starts
# before it gets there.
BUSY = 0.85


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--salon", default=os.path.join(ROOT, "target/release/salon"),
                        help="the salon binary (default: target/release/salon)")
    parser.add_argument("--salon-server", metavar="BIN",
                        help="run this salon binary as the Salon server, and --salon only as "
                             "the load generator (for before/after runs)")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated: salon,janus,floor (default: all three)")
    parser.add_argument("--scenarios", default="meeting,webinar,large",
                        help="comma-separated: meeting,webinar,large (default: all three)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="measurement window of each step, seconds (default: 5)")
    parser.add_argument("--server-cpus", default="0", help="CPUs of the server (default: 0)")
    parser.add_argument("--generator-cpus", default="1",
                        help="CPUs of the load generator (default: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="two small steps per scenario, to try the harness")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench"),
                        help="where results.md and results.json go (default: bench/)")
    parser.add_argument("--steps", action="append", default=[], metavar="SCENARIO=N,N,...",
                        help="the steps of a scenario instead of the built-in ones, "
                             "e.g. meeting=4,8 (repeatable)")
    parser.add_argument("--render", action="store_true",
                        help="only write results.md again from results.json")
    args = parser.parse_args()
    if args.render:
        with open(os.path.join(args.out, "results.json")) as f:
            results = json.load(f)
        args.quick = results["machine"].get("quick", False)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(render(results, args))
        return
    targets = [t for t in args.targets.split(",") if t]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for t in targets:
        if t not in TARGETS:
            parser.error(f"unknown target {t!r}: use {', '.join(TARGETS)}")
    for s in scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}: use {', '.join(SCENARIOS)}")
    custom = {}
    for spec in args.steps:
        name, _, sizes = spec.partition("=")
        try:
            custom[name] = [int(n) for n in sizes.split(",") if n]
        except ValueError:
            custom[name] = []
        if name not in SCENARIOS or not custom[name] or min(custom[name]) < 1:
            parser.error(f"--steps {spec!r}: use e.g. meeting=4,8, webinar=50,100 or large=1,2")
    if not os.access(args.salon, os.X_OK):
        parser.error(f"{args.salon} is not an executable: build it (cargo build --release)")

    reports = os.path.join(ROOT, "target", "bench")
    os.makedirs(reports, exist_ok=True)
    started = time.monotonic()
    machine = describe_machine(args)
    log(f"machine: {machine['cpu']}, {machine['cores']} cores; "
        f"idle load {machine['idle_busy_cores']:.2f} cores before the run")

    results = {"machine": machine, "scenarios": {}}
    for scenario in scenarios:
        steps = custom.get(scenario) or (QUICK[scenario] if args.quick else SCENARIOS[scenario][0])
        results["scenarios"][scenario] = run_scenario(args, scenario, steps, targets, reports)
    machine["wall_seconds"] = round(time.monotonic() - started)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(render(results, args))
    log(f"wrote {os.path.join(args.out, 'results.md')} in {machine['wall_seconds']} s")


def log(line):
    print(f"bench: {line}", file=sys.stderr, flush=True)


# ---- one step ---------------------------------------------------------------

def run_scenario(args, scenario, steps, targets, reports):
    allowed = SCENARIO_TARGETS.get(scenario, TARGETS)
    racing = [t for t in targets if t in allowed]
    for t in targets:
        if t not in allowed:
            log(f"{scenario}: {NAMES[t]} cannot run it (see bench/bench.py's docstring); skipped")
    rows = []
    stops = {}
    for size in steps:
        for target in list(racing):
            row = run_step(args, target, scenario, size, reports)
            rows.append(row)
            log(summary_line(row))
            if row["stop"]:
                racing.remove(target)
                stops[target] = f"{row['stop']} at {count(scenario, size)}"
        if not racing:
            break
    for target in racing:
        stops[target] = "the largest step, still not saturated"
    return {"rows": rows, "stops": stops}


def run_step(args, target, scenario, size, reports):
    extra = []
    settle = 10
    if scenario == "meeting":
        rooms, publishers, subscribers = size, 4, 0
    elif scenario == "large":
        rooms, publishers, subscribers = size, 50, 0
        extra = ["--simulcast", "--max-subscription-bitrate", LARGE_CAP, "--mode", LARGE_MODE,
                 "--render", LARGE_RENDER, "--speakers", str(LARGE_SPEAKERS)]
        # The send-side estimate starts at 1.5 Mbit/s and must climb to the
        # 49 quarter layers before every subscription has video.
        settle = 30
    else:
        rooms, publishers, subscribers = 1, 1, size
    participants = rooms * (publishers + subscribers)
    ramp = max(2.0, participants / 40)
    report_path = os.path.join(reports, f"{scenario}-{size}-{target}.json")
    if os.path.exists(report_path):
        os.remove(report_path)
    plan = [
        "--rooms", str(rooms), "--publishers", str(publishers),
        "--subscribers", str(subscribers), "--ramp", f"{ramp:g}s",
        "--settle", f"{settle}s",
        "--duration", f"{args.duration:g}s", "--json", report_path, "--quiet",
    ] + extra
    generator = ["taskset", "-c", args.generator_cpus, args.salon, "loadtest",
                 "--target", target]
    server = None
    with tempfile.TemporaryDirectory(prefix="salon-bench-") as data_dir:
        if target == "salon":
            server = SalonServer(args, data_dir)
            command = generator + server.loadtest_flags() + plan
        elif target == "janus":
            command = generator + ["--janus-cpus", args.server_cpus] + plan
        else:
            first_cpu = args.server_cpus.split(",")[0].split("-")[0]
            command = generator + ["--floor-cpu", first_cpu] + plan
        try:
            done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, timeout=600)
            stderr = done.stderr.strip()
        except subprocess.TimeoutExpired:
            stderr = "the load test did not end within 10 minutes"
        finally:
            if server:
                server.stop()
    report = None
    if os.path.exists(report_path):
        with open(report_path) as f:
            report = json.load(f)
    return digest(target, scenario, size, participants, report, stderr)


class SalonServer:
    """`salon` on free loopback ports, pinned, with one media worker."""

    def __init__(self, args, data_dir):
        self.http = free_port(socket.SOCK_STREAM)
        self.media = free_port(socket.SOCK_DGRAM)
        self.data_dir = data_dir
        self.listen = f"127.0.0.1:{self.http}"
        self.process = subprocess.Popen(
            ["taskset", "-c", args.server_cpus, args.salon_server or args.salon,
             "--data-dir", data_dir,
             "--listen", self.listen, "--media-port", str(self.media),
             "--media-workers", "1", "--max-participants", "1000", "--log", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.listen}/healthz", timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: salon did not start on {self.listen}")
                time.sleep(0.1)

    def loadtest_flags(self):
        return ["--data-dir", self.data_dir, "--listen", self.listen,
                "--server-pid", str(self.process.pid)]

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def digest(target, scenario, size, participants, report, stderr):
    """The figures of one step that the tables use, and why the race ends."""
    row = {"target": target, "scenario": scenario, "size": size,
           "participants": participants, "stop": None}
    window = report and report.get("window")
    if not window:
        row["stop"] = "no measurement"
        row["error"] = (stderr.splitlines() or ["no report"])[-1]
        return row
    server = report.get("server") or {}
    received = window["received"]
    subs = window["subscriptions"]
    latency = window["latency_us"]["all"]
    seconds = window["duration_s"]
    forwarded = server.get("forwarded_packets") or 0
    row.update({
        "joined": report["joins"]["joined"],
        "disconnected": report["joins"].get("disconnected", 0),
        "planned": report["joins"]["planned"],
        "join_p50_ms": report["joins"]["join_ms"].get("p50"),
        "subscriptions": subs["expected"],
        "with_media": subs["with_media"],
        "forwarded_pps": forwarded / seconds if seconds else 0,
        "loss_pct": received["loss_pct"],
        "latency_p50_ms": latency["p50"] / 1000 if latency.get("p50") is not None else None,
        "latency_p99_ms": latency["p99"] / 1000 if latency.get("p99") is not None else None,
        "latency_max_ms": latency["max"] / 1000 if latency.get("max") is not None else None,
        "server_cores": server.get("cpu_cores"),
        "cpu_us_per_packet": server.get("cpu_us_per_forwarded_packet"),
        "forwarded_per_cpu_second": server.get("forwarded_per_cpu_second"),
        "peak_rss_bytes": server.get("peak_rss_bytes"),
        "generator_cores": report["generator"].get("cpu_cores"),
        "other_cores": report["machine"].get("other_cores"),
        "warnings": report.get("warnings", []),
    })
    video = window.get("video")
    if video and video.get("simulcast"):
        rate = video["subscriber_bitrate_bps"]
        row.update({
            "cap_bps": video.get("cap_bps"),
            "video_mean_bps": rate.get("mean"),
            "video_min_bps": rate.get("min"),
            "video_max_bps": rate.get("max"),
            "over_cap": video["over_cap"],
            "layer_switches": video["layer_switches"],
            "stalled": video["stalled"],
            "switched_off": video["switched_off"],
            "layers": video["layers"],
            "video_subscriptions": video["subscriptions"],
        })
    if row["disconnected"]:
        row["stop"] = f"{row['disconnected']} participants dropped"
    elif row["joined"] < row["planned"] or row["with_media"] < row["subscriptions"]:
        row["stop"] = "not every subscription got media"
    elif row.get("stalled"):
        row["stop"] = "video stalled"
    elif row.get("over_cap"):
        row["stop"] = "a subscriber over its cap"
    elif row["loss_pct"] > LOSS_LIMIT_PCT:
        row["stop"] = f"loss over {LOSS_LIMIT_PCT:g}%"
    elif (row["server_cores"] or 0) >= SATURATED:
        row["stop"] = "server CPU saturated"
    elif (row["generator_cores"] or 0) >= SATURATED:
        row["stop"] = "generator CPU saturated"
    return row


def sustained(row):
    """Forwarded everything: every subscription got media, loss at most 1%;
    with simulcast also no stalled video and nobody over the cap."""
    return "loss_pct" in row and row["joined"] == row["planned"] and not row.get("disconnected") \
        and row["with_media"] == row["subscriptions"] and row["loss_pct"] <= LOSS_LIMIT_PCT \
        and not row.get("stalled") and not row.get("over_cap")


def summary_line(row):
    head = f"{row['scenario']} {row['size']:>3} {row['target']:<5}"
    if "loss_pct" not in row:
        return f"{head} no measurement: {row.get('error')}"
    line = (f"{head} {row['forwarded_pps']:>8.0f} pkt/s fwd  {fmt(row['cpu_us_per_packet'], 2)} µs/pkt"
            f"  server {fmt(row['server_cores'], 2)} cores  generator {fmt(row['generator_cores'], 2)}"
            f"  loss {row['loss_pct']:.2f}%  p50 {fmt(row['latency_p50_ms'], 2)} ms"
            f"  p99 {fmt(row['latency_p99_ms'], 2)} ms")
    if "over_cap" in row:
        line += (f"  video {fmt(kbps(row['video_mean_bps']), 0)}/{fmt(kbps(row['video_max_bps']), 0)}"
                 f" kbit/s mean/max (cap {fmt(kbps(row['cap_bps']), 0)}), {row['over_cap']} over"
                 f"  {row['stalled']} stalled  {row['layer_switches']} switches")
    return line + (f"  → stop: {row['stop']}" if row["stop"] else "")


# ---- the machine ------------------------------------------------------------

def describe_machine(args):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            memory_gib = round(kib / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    os_name = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": os_name,
        "kernel": platform.release(),
        "rustc": output(["rustc", "--version"]),
        "janus": output(["janus", "--version"]).splitlines()[0] if output(["janus", "--version"]) else "",
        "salon": output([args.salon, "--version"]),
        "commit": output(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
        "server_cpus": args.server_cpus,
        "generator_cpus": args.generator_cpus,
        "duration_s": args.duration,
        "idle_busy_cores": idle_load(),
        "quick": args.quick,
        # The server's choice (--bandwidth-estimation), from the environment
        # it inherits; the server's default when unset.
        "estimation": os.environ.get("SALON_BANDWIDTH_ESTIMATION") or "twcc (the default)",
    }


def output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def idle_load(seconds=2.0):
    """Cores kept busy by whatever else runs on the machine, before the run."""
    def busy():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle
    ticks = os.sysconf("SC_CLK_TCK")
    before = busy()
    time.sleep(seconds)
    return (busy() - before) / ticks / seconds


# ---- the report -------------------------------------------------------------

def render(results, args):
    m = results["machine"]
    out = []
    w = out.append
    w("# Salon, Janus and the relay floor, side by side\n")
    w("Generated by `bench/run` — do not edit by hand; the analysis is in "
      "[docs/performance.md](../docs/performance.md#side-by-side-salon-janus-and-the-relay-floor).\n")
    w("## The run\n")
    w(f"- **When:** {m['date']}, Salon `{m['commit']}` ({m['salon']}), {m['rustc']}")
    w(f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}, "
      f"Linux {m['kernel']}; {m['janus'] or 'janus'} (Debian's package)")
    w(f"- **Salon's bandwidth estimation:** {m.get('estimation', 'twcc (the default then)')}.")
    w(f"- **Pinning:** every server on CPU {m['server_cpus']} (Salon with one media worker, "
      f"Janus with all its threads, the one-thread relay floor); the load generator "
      f"(`salon loadtest`) on CPU {m['generator_cpus']}. Other load before the run: "
      f"{m['idle_busy_cores']:.2f} cores.")
    w(f"- **Each step:** a fresh server; joins spread over max(2 s, participants / 40 s); "
      f"then a {m['duration_s']:g} s measurement window. Audio 40 kbit/s at 50 packets/s "
      f"and video 1.5 Mbit/s at 30 fps per publisher (about 235 packets/s in all).")
    w(f"- **A server leaves the race** after the step at which loss passed {LOSS_LIMIT_PCT:g}%, "
      f"a subscription got no media, or its CPU or the generator's reached "
      f"{SATURATED:.0%} of a core. A step is *sustained* when every subscription got media "
      f"and loss stayed at or below {LOSS_LIMIT_PCT:g}%.")
    w(f"- **Command:** `bench/run{' --quick' if args.quick else ''}` "
      f"({m['wall_seconds'] // 60} min {m['wall_seconds'] % 60} s after the build). "
      "One step by hand: `taskset -c 1 target/release/salon loadtest --target janus "
      "--janus-cpus 0 --rooms 4 --duration 5s` (see `salon loadtest --help`).\n")
    w("CPU per forwarded packet is the server's CPU time in the window (user + system, "
      "from `/proc/PID/stat`, so the kernel's UDP work counts) over the packets it "
      "forwarded (Salon's `/metrics`; for Janus and the floor, what the subscribers "
      "received). Latency is one-way, publisher's send call to subscriber's receive, "
      "through the generator's own WebRTC stack on both ends.\n")

    checks = []
    for scenario, data in results["scenarios"].items():
        rows = data["rows"]
        if scenario == "large":
            render_large(w, data, m)
            checks.extend(large_checks(data))
            continue
        what = SCENARIOS[scenario][1]
        w(f"## {scenario.capitalize()}: {'rooms of 4, everyone publishes and subscribes to all' if scenario == 'meeting' else '1 publisher, subscribers added'}\n")
        present = [t for t in TARGETS if any(r["target"] == t for r in rows)]
        summaries = {t: summarize([r for r in rows if r["target"] == t]) for t in present}
        w("| | " + " | ".join(NAMES[t] for t in present) + " |")
        w("|---|" + "---|" * len(present))
        line = lambda label, f: w(f"| {label} | " + " | ".join(f(t) for t in present) + " |")
        line("max sustained forwarded packets/s",
             lambda t: f"{fmt(summaries[t]['max_pps'], 0)} ({count(scenario, summaries[t]['max_size'])})"
             if summaries[t]["max_pps"] else "—")
        line("what ended the race", lambda t: data["stops"].get(t, "—"))
        common = common_sizes(rows, present)
        ref = max(common) if common else None
        if ref is not None:
            at = {t: row_at(rows, t, ref) for t in present}
            line(f"forwarded packets per CPU-second at {count(scenario, ref)}",
                 lambda t: fmt(at[t]["forwarded_per_cpu_second"], 0))
            line(f"CPU per forwarded packet at {count(scenario, ref)}",
                 lambda t: f"{fmt(at[t]['cpu_us_per_packet'], 2)} µs")
        line("latency p50 / p99 at half load",
             lambda t: f"{fmt(summaries[t]['half']['latency_p50_ms'], 2)} / "
                       f"{fmt(summaries[t]['half']['latency_p99_ms'], 2)} ms "
                       f"({count(scenario, summaries[t]['half']['size'])})" if summaries[t]["half"] else "—")
        line("loss, sustained steps (max)", lambda t: f"{fmt(summaries[t]['max_loss'], 3)} %")
        line("RSS per participant", lambda t: f"{fmt(summaries[t]['rss_per_participant_kib'], 0)} KiB"
             if summaries[t]["rss_per_participant_kib"] is not None else "—")
        w("")

        ratios = []
        for other in ("janus", "floor"):
            if "salon" in present and other in present:
                r = ratio_stats(rows, "salon", other, common)
                if r:
                    ratios.append((other, r))
                    w(f"- **Salon / {NAMES[other]}, CPU per forwarded packet:** median "
                      f"{r['median']:.2f}× over the {r['n']} steps both sustained "
                      f"({r['min']:.2f}–{r['max']:.2f}×).")
        if "salon" in present and "janus" in present:
            s, j = summaries["salon"]["max_pps"], summaries["janus"]["max_pps"]
            if s and j:
                w(f"- **Max sustained forwarded packets/s, Salon / Janus:** {s / j:.2f}×"
                  f" (a limit set by the generator, not the server, is a lower bound: see the steps).")
        w("")
        checks.extend(target_checks(scenario, summaries, dict(ratios)))

        w(f"### Every step ({scenario})\n")
        w(f"| {what} | server | forwarded pkt/s | CPU µs/pkt | server cores | generator cores | "
          "loss % | p50 ms | p99 ms | max ms | peak RSS MiB | note |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            if "loss_pct" not in r:
                w(f"| {r['size']} | {NAMES[r['target']]} | — | — | — | — | — | — | — | — | — | "
                  f"{r['stop']}: {r.get('error', '')} |")
                continue
            note = r["stop"] or ""
            if (r.get("other_cores") or 0) > 0.15:
                note = (note + "; " if note else "") + f"other load {r['other_cores']:.2f} cores"
            w(f"| {r['size']} | {NAMES[r['target']]} | {r['forwarded_pps']:.0f} | "
              f"{fmt(r['cpu_us_per_packet'], 2)} | {fmt(r['server_cores'], 2)} | "
              f"{fmt(r['generator_cores'], 2)} | {r['loss_pct']:.3f} | "
              f"{fmt(r['latency_p50_ms'], 2)} | {fmt(r['latency_p99_ms'], 2)} | "
              f"{fmt(r['latency_max_ms'], 1)} | {fmt(mib(r['peak_rss_bytes']), 1)} | {note} |")
        w("")

    w("## The targets (DESIGN.md)\n")
    for c in checks:
        w(f"- {c}")
    w("")
    return "\n".join(out)


def render_large(w, data, m):
    rows = data["rows"]
    w("## Large meeting: rooms of 50, everyone publishes audio and 3-layer video (Salon only)\n")
    w(f"Every participant publishes audio and simulcast video — three RID layers "
      f"as libwebrtc sends a 1280×720 camera: 320×180 at 150 kbit/s, 640×360 at 500 kbit/s, "
      f"1280×720 at 1.5 Mbit/s, 30 fps each — subscribes to the other 49, sets the "
      f"bandwidth profile `mode: '{LARGE_MODE}'`, `maxSubscriptionBitrate: {LARGE_CAP}`, and "
      f"reports a render size of {LARGE_RENDER.replace('x', '×')} for every video track (a "
      f"tile of a 7×7 grid in a 1920×1080 window, as twilio-video's `contentPreferencesMode: "
      f"'auto'` reports its video elements). {LARGE_SPEAKERS} people per room speak (40 "
      f"kbit/s, 50 packets/s, with an RFC 6464 audio level); the others send Opus DTX "
      f"silence (5 small packets/s), twilio-video's default. "
      "Subscriber video is RTP payload over the window per receiving participant; *stalled* "
      "is a subscription whose video stopped for more than 2 s without the server switching "
      "it off; *switches* are changes of the received keyframe size (the layer), seen every "
      "250 ms. Janus is not run: the load tester's Janus target publishes one stream per "
      "camera and asks VideoRoom for no substream, and VideoRoom has no per-subscriber "
      "bitrate cap to hold (see bench/bench.py).\n")
    ok = [r for r in rows if sustained(r)]
    best = max(ok, key=lambda r: r["size"], default=None)
    w(f"- **Largest sustained step:** {count('large', best['size']) if best else 'none'}"
      f"; the race ended: {data['stops'].get('salon', '—')}.")
    if best and best.get("server_cores"):
        w(f"- **Rooms of 50 per core (server):** {best['size'] / best['server_cores']:.2f}, "
          f"from {best['server_cores']:.2f} server cores at {count('large', best['size'])} "
          "(a linear estimate; a generator at saturation makes it a lower bound).")
    w("")
    w("| rooms of 50 | forwarded pkt/s | CPU µs/pkt | server cores | generator cores | loss % | "
      "p99 ms | subscriber video mean / max kbit/s (cap) | over cap | layer switches | "
      "stalled | switched off | layers at the end | note |")
    w("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        if "loss_pct" not in r:
            w(f"| {r['size']} | — | — | — | — | — | — | — | — | — | — | — | — | "
              f"{r['stop']}: {r.get('error', '')} |")
            continue
        layers = ", ".join(f"{k}: {v}" for k, v in (r.get("layers") or {}).items())
        w(f"| {r['size']} | {r['forwarded_pps']:.0f} | {fmt(r['cpu_us_per_packet'], 2)} | "
          f"{fmt(r['server_cores'], 2)} | {fmt(r['generator_cores'], 2)} | {r['loss_pct']:.3f} | "
          f"{fmt(r['latency_p99_ms'], 2)} | {fmt(kbps(r.get('video_mean_bps')), 0)} / "
          f"{fmt(kbps(r.get('video_max_bps')), 0)} ({fmt(kbps(r.get('cap_bps')), 0)}) | "
          f"{r.get('over_cap', '—')} | {r.get('layer_switches', '—')} | {r.get('stalled', '—')} | "
          f"{r.get('switched_off', '—')} | {layers} | {r['stop'] or ''} |")
    w("")


def large_checks(data):
    rows = [r for r in data["rows"] if "loss_pct" in r]
    if not rows:
        return ["**not met** (large): no room of 50 was measured."]
    first = rows[0]
    fits = sustained(first) and (first["server_cores"] or 0) < SATURATED
    return [f"{'met' if fits else '**not met**'} (large): a room of 50 on one core, every "
            f"subscriber within its cap and no stalled video — server "
            f"{fmt(first['server_cores'], 2)} cores, {first.get('over_cap', '—')} over the cap, "
            f"{first.get('stalled', '—')} stalled, loss {first['loss_pct']:.3f} %."]


def kbps(bps):
    return bps / 1000 if bps is not None else None


def summarize(rows):
    ok = [r for r in rows if sustained(r)]
    best = max(ok, key=lambda r: r["forwarded_pps"], default=None)
    half = None
    if best:
        goal = best["forwarded_pps"] / 2
        half = min(ok, key=lambda r: abs(r["forwarded_pps"] - goal))
    rss = None
    with_rss = [r for r in ok if r.get("peak_rss_bytes")]
    if len(with_rss) >= 2:
        a, b = with_rss[0], with_rss[-1]
        if b["participants"] > a["participants"]:
            rss = (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["participants"] - a["participants"]) / 1024
    return {
        "max_pps": best["forwarded_pps"] if best else None,
        "max_size": best["size"] if best else None,
        "half": half,
        "max_loss": max((r["loss_pct"] for r in ok), default=None),
        # Loss where neither the server nor the generator was saturated.
        "unsaturated_loss": max((r["loss_pct"] for r in rows if "loss_pct" in r
                                 and (r["server_cores"] or 0) < BUSY
                                 and (r["generator_cores"] or 0) < BUSY), default=None),
        "rss_per_participant_kib": rss,
    }


def common_sizes(rows, targets):
    sizes = None
    for t in targets:
        mine = {r["size"] for r in rows if r["target"] == t and sustained(r)
                and r.get("cpu_us_per_packet")}
        sizes = mine if sizes is None else sizes & mine
    return sorted(sizes or [])


def row_at(rows, target, size):
    return next(r for r in rows if r["target"] == target and r["size"] == size)


def ratio_stats(rows, a, b, _common):
    both = common_sizes(rows, [a, b])
    values = [row_at(rows, a, s)["cpu_us_per_packet"] / row_at(rows, b, s)["cpu_us_per_packet"]
              for s in both]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def target_checks(scenario, summaries, ratios):
    checks = []
    label = scenario
    if "janus" in ratios:
        r = ratios["janus"]["median"]
        checks.append(f"{'met' if r <= 1 else '**not met**'} ({label}): Salon's CPU per forwarded "
                      f"packet ≤ Janus's — Salon / Janus = {r:.2f}×.")
    if "floor" in ratios:
        r = ratios["floor"]["median"]
        checks.append(f"{'met' if r <= 2 else '**not met**'} ({label}): within 2× of the relay "
                      f"floor — Salon / floor = {r:.2f}×.")
    s = summaries.get("salon")
    if s and s["half"]:
        p99 = s["half"]["latency_p99_ms"]
        checks.append(f"{'met' if p99 is not None and p99 < 1 else '**not met**'} ({label}): "
                      f"forwarding latency p99 < 1 ms at half load — {fmt(p99, 2)} ms at "
                      f"{count(scenario, s['half']['size'])}.")
    if s and s["unsaturated_loss"] is not None:
        loss = s["unsaturated_loss"]
        checks.append(f"{'met' if loss == 0 else '**not met**'} ({label}): no loss below "
                      f"saturation — at most {loss:.3f} % over Salon's steps with the server and "
                      f"the generator both under {BUSY:.0%} of a core.")
    return checks


def count(scenario, n):
    one, many = UNITS[scenario]
    return f"{n} {one if n == 1 else many}"


def fmt(value, digits):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}".replace(",", " ")


def mib(value):
    return value / 1024 / 1024 if value else None


if __name__ == "__main__":
    main()
