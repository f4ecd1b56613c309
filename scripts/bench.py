#!/usr/bin/env python3
"""gospy's pause / size / throughput benchmark, side by side with the runtime
and gdb.

For each goroutine count it starts tests/fixtures/bench (N goroutines parked at
stack depth ~10; the fixture times its own runtime.Stack(buf, true)), then
measures:

  capture   pause (every thread stopped), bytes read, snapshot size on disk,
            wall time, gospy's peak RSS
  gcore     gdb's gcore: time the target is stopped, core file size
  analyze   summary, dump (to /dev/null), top and heap on the snapshot, with 1
            and 2 rayon threads (RAYON_NUM_THREADS), wall time and peak RSS

and checks the targets of issue 5. With a 100k-entry map global in the same
fixture it compares the pause of `gospy top --pid N` refreshes in the
interactive view (driven in tmux, the pause read from its header) with
`gospy top --pid N --count 1` (issue 12: the view must not walk globals). It also builds a ~30 MB Go executable
(tests/fixtures/big plus generated functions) and records how long capture
takes to open it and decode the runtime's layout.
Results: a table on stdout and JSON (--out, default
target/bench/results.json).

  python3 scripts/bench.py                       # 1k, 10k, 100k goroutines
  python3 scripts/bench.py --sizes 1000,10000 --no-gcore
  python3 scripts/bench.py --only tui-pause      # just the top / TUI pause check
  python3 scripts/bench.py --only heap-profile   # just the heap profile (issue 13)
  python3 scripts/bench.py --only small-service  # just the small service (issue 16)
  python3 scripts/bench.py --only objects [--objects-mb 2048]  # capture --heap, analyze objects (issue 14)

The heap-profile part (issue 13) starts the fixture with BENCH_BUCKETS=10000
(10k memory-profile buckets at MemProfileRate=1) and records the pause the
bucket list adds (capture's "heap profile buckets" phase, and the pause
with and without the buckets), then with 50k buckets the time of
`gospy analyze FILE pprof heap -o X`.

The small-service part (issue 16) starts tests/fixtures/smallsvc (a 32 MiB
zero-initialised global array touched in a few places, ~20 parked
goroutines) and records the pause and bytes read of `capture --json`, and
the pause of live `summary --json` and `top --count 1` (dump uses the same
capture as summary): medians of --repeat, targets 1 ms and 4 MiB.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_measured(cmd, env=None, stdout=subprocess.PIPE):
    """Run cmd; return (returncode, stdout, wall seconds, peak RSS bytes)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    out = b""
    if stdout == subprocess.PIPE:
        out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.stderr.write(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')}\n")
    return p.returncode, out, wall, ru.ru_maxrss * 1024


def go_toolchain(prefix):
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts/install-go-toolchains.sh")],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        v, path = line.split(" ", 1)
        if v == prefix or v.startswith(prefix + "."):
            return v, path
    sys.exit(f"go {prefix} is not installed (scripts/install-go-toolchains.sh)")


def build_fixture(go, outdir):
    exe = os.path.join(outdir, "bench")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0",
           "GOCACHE": os.path.expanduser("~/.cache/gospy/gocache")}
    subprocess.run([go, "build", "-trimpath", "-o", exe, "main.go"], check=True, env=env,
                   cwd=os.path.join(ROOT, "tests/fixtures/bench"))
    return exe


def build_big(go, outdir, functions=14000):
    """tests/fixtures/big plus a gen.go of `functions` generated functions:
    an executable of about 30 MB (DWARF compressed, as Go writes it)."""
    src = os.path.join(outdir, "bigsrc")
    os.makedirs(src, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "tests/fixtures/big/main.go"), src)
    lines = ["package main", "", 'import "fmt"', ""]
    for i in range(functions):
        lines.append(f"type T{i} struct {{ A, B, C int; S string; M map[string]int; P *T{i} }}")
        lines.append(f"func F{i}(x int) string {{ t := &T{i}{{A: x, B: x * {i}, S: fmt.Sprint(x)}}; t.P = t; "
                     f"if x > {i} {{ return t.S + fmt.Sprint(t.B) }}; return fmt.Sprintf(\"%d-%s\", t.A+t.C, t.S) }}")
    lines.append("func init() { generated = []func(int) string{" + ", ".join(f"F{i}" for i in range(functions)) + "} }")
    with open(os.path.join(src, "gen.go"), "w") as f:
        f.write("\n".join(lines) + "\n")
    exe = os.path.join(outdir, "big")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0",
           "GOCACHE": os.path.expanduser("~/.cache/gospy/gocache")}
    subprocess.run([go, "build", "-trimpath", "-o", exe, "main.go", "gen.go"], check=True, env=env, cwd=src)
    return exe


def binary_open(gospy, go, work, repeat):
    """Capture the big program: gospy's time to open its executable and
    decode the runtime layout (`binary_load_ns`), best of `repeat`."""
    exe = build_big(go, work)
    d = tempfile.mkdtemp(dir=work)
    p = subprocess.Popen([exe, d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(d, "ready")):
            if p.poll() is not None or time.monotonic() > deadline:
                sys.exit("the big fixture did not get ready")
            time.sleep(0.05)
        best = None
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "-o", os.path.join(work, "big.gss"), "--json"])
            if rc == 0:
                ns = json.loads(out)["binary_load_ns"]
                best = ns if best is None else min(best, ns)
        return {"executable_bytes": os.path.getsize(exe), "binary_load_ns": best}
    finally:
        p.kill()
        p.wait()


def start_fixture(exe, n, work, map_entries=None, buckets=None, busy=False):
    d = tempfile.mkdtemp(dir=work)
    extra = [str(map_entries)] if map_entries else []
    env = None
    if buckets or busy:
        env = dict(os.environ)
        if buckets:
            env["BENCH_BUCKETS"] = str(buckets)
        if busy:
            env["BENCH_BUSY"] = "1"
    p = subprocess.Popen([exe, str(n), d] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while not os.path.exists(os.path.join(d, "ready")):
        if p.poll() is not None or time.monotonic() > deadline:
            p.kill()
            sys.exit(f"fixture with {n} goroutines did not get ready")
        time.sleep(0.1)
    with open(os.path.join(d, "bench.json")) as f:
        return p, json.load(f)


DURATION = re.compile(r"([0-9.]+)(µs|ms|s)\b")


def parse_duration_ns(text):
    """A duration as gospy prints it (report::fmt_duration_ns, < 1 min)."""
    m = DURATION.fullmatch(text.strip())
    if not m:
        return None
    return round(float(m.group(1)) * {"µs": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)])


def tui_refresh_pauses(gospy, pid, refreshes, interval=0.5):
    """Drive `gospy top --pid PID` in a tmux pane and read the pause of each
    refresh from its header ("refresh K" ... "this refresh paused the
    target D"); None without tmux."""
    if not shutil.which("tmux"):
        return None
    session = f"gospy-bench-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50",
                    f"{gospy} top --pid {pid} --interval {interval}"], check=True)
    pauses = {}
    try:
        deadline = time.monotonic() + 60 + refreshes * interval * 4
        while len(pauses) < refreshes and time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                    capture_output=True, text=True).stdout
            n = re.search(r"\brefresh (\d+)", screen)
            d = re.search(r"this refresh paused the target (\S+)", screen)
            if n and d:
                ns = parse_duration_ns(d.group(1))
                if ns is not None:
                    pauses.setdefault(int(n.group(1)), ns)
            time.sleep(interval / 5)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"])
        time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], stderr=subprocess.DEVNULL)
    return [pauses[k] for k in sorted(pauses)]


def tui_pause(gospy, exe, work, repeat, goroutines=1000, map_entries=100000):
    """Issue 12: on a target with a 100k-entry map global, a refresh of the
    interactive `top` view pauses the target no longer than `top --count 1`
    (the same capture as `top --once`, which prints no header). Best and
    median of `repeat` each; the view's refreshes are read from its header."""
    p, _ = start_fixture(exe, goroutines, work, map_entries)
    try:
        once = []
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "top", "--pid", str(p.pid), "--count", "1"])
            m = re.search(rb"capture pause (\S+)", out)
            ns = parse_duration_ns(m.group(1).decode()) if rc == 0 and m else None
            if ns is not None:
                once.append(ns)
        # Walking the map's globals during a pause: what the view must avoid.
        rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "-o",
                                      os.path.join(work, "tui.gss"), "--json"])
        with_globals = json.loads(out)["pause_ns"] if rc == 0 else None
        tui = tui_refresh_pauses(gospy, p.pid, repeat)
    finally:
        p.kill()
        p.wait()
    once.sort()
    r = {"goroutines": goroutines, "map_entries": map_entries,
         "top_once_pauses_ns": once, "capture_with_globals_pause_ns": with_globals,
         "tui_refresh_pauses_ns": tui}
    if tui:
        tui_sorted = sorted(tui)
        r["tui_refresh_median_ns"] = tui_sorted[len(tui_sorted) // 2]
        r["top_once_median_ns"] = once[len(once) // 2] if once else None
    return r


def busy_capture(gospy, exe, work, repeat, n):
    """The pause at `n` parked goroutines when a thread of the target runs
    during every capture (BENCH_BUSY: a goroutine waking every 100 us): the
    quiet pre-read cannot be kept, so the pause reads every g struct itself."""
    p, _ = start_fixture(exe, n, work, busy=True)
    snap = os.path.join(work, "busy.gss")
    pauses, why = [], []
    try:
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "-o", snap, "--json"])
            if rc != 0:
                continue
            c = json.loads(out)
            pauses.append(c["pause_ns"])
            q = c.get("quiet") or {}
            why.append(None if q.get("kept") else q.get("why_not"))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    r = {"goroutines": n, "capture_pauses_ns": pauses, "pause_median_ns": median(pauses) if pauses else None,
         "quiet_why_not": why}
    print(f"busy target, {n} goroutines: pauses {', '.join(ms(x) for x in pauses)} (quiet pre-read not kept: {why})")
    return r


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[len(v) // 2] if v else None


def heap_profile(gospy, exe, work, repeat, buckets=10000, big_buckets=50000, goroutines=100):
    """Issue 13: the pause the bucket list adds at `buckets` buckets (the
    "heap profile buckets" phase of `capture --json`, and the whole pause
    with and without the buckets), and the time of `analyze FILE pprof heap`
    on a snapshot of a program with `big_buckets` buckets. Medians of
    `repeat`."""
    def captures(p, name):
        phases, pauses, mp = [], [], None
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "-o",
                                          os.path.join(work, name), "--json"])
            if rc != 0:
                continue
            c = json.loads(out)
            pauses.append(c["pause_ns"])
            phases.append(dict(c.get("pause_phases_ns") or []).get("heap profile buckets"))
            mp = c.get("mem_profile")
        return phases, pauses, mp
    r = {"buckets": buckets, "big_buckets": big_buckets, "goroutines": goroutines}
    p, fx = start_fixture(exe, goroutines, work, buckets=buckets)
    try:
        r["fixture_buckets"] = fx.get("mem_buckets")
        r["bucket_phase_ns"], r["pauses_ns"], r["mem_profile"] = captures(p, "hp.gss")
    finally:
        p.kill()
        p.wait()
    p, _ = start_fixture(exe, goroutines, work)
    try:
        _, r["pauses_without_buckets_ns"], _ = captures(p, "hp0.gss")
    finally:
        p.kill()
        p.wait()
    r["bucket_phase_median_ns"] = median(r["bucket_phase_ns"])
    r["pause_median_ns"] = median(r["pauses_ns"])
    r["pause_without_buckets_median_ns"] = median(r["pauses_without_buckets_ns"])
    p, fx = start_fixture(exe, goroutines, work, buckets=big_buckets)
    snap = os.path.join(work, "hp50k.gss")
    try:
        r["big_fixture_buckets"] = fx.get("mem_buckets")
        rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "-o", snap, "--json"])
        r["big_mem_profile"] = json.loads(out).get("mem_profile") if rc == 0 else None
    finally:
        p.kill()
        p.wait()
    walls = []
    for _ in range(repeat):
        rc, _, wall, _ = run_measured([gospy, "analyze", snap, "pprof", "heap", "-o",
                                       os.path.join(work, "heap.pb.gz")])
        if rc == 0:
            walls.append(wall)
    r["pprof_heap_s"] = walls
    r["pprof_heap_median_s"] = median(walls)
    return r


def small_service(gospy, go, work, repeat):
    """Issue 16: the pause of capture and of live summary/top on a small
    service with 32 MiB of mostly untouched BSS (tests/fixtures/smallsvc),
    and the bytes capture reads. Medians of `repeat`."""
    exe = os.path.join(work, "smallsvc")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0",
           "GOCACHE": os.path.expanduser("~/.cache/gospy/gocache")}
    subprocess.run([go, "build", "-trimpath", "-o", exe, "main.go"], check=True, env=env,
                   cwd=os.path.join(ROOT, "tests/fixtures/smallsvc"))
    d = tempfile.mkdtemp(dir=work)
    p = subprocess.Popen([exe, d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = {"capture_pauses_ns": [], "capture_bytes_read": [], "capture_phases_ns": [],
         "summary_pauses_ns": [], "top_pauses_ns": []}
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(d, "ready")):
            if p.poll() is not None or time.monotonic() > deadline:
                sys.exit("the smallsvc fixture did not get ready")
            time.sleep(0.05)
        with open(os.path.join(d, "expected.json")) as f:
            r["goroutines"] = json.load(f)["goroutines"]
        pid = str(p.pid)
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "capture", "--pid", pid, "-o",
                                          os.path.join(work, "small.gss"), "--json"])
            if rc == 0:
                c = json.loads(out)
                r["capture_pauses_ns"].append(c["pause_ns"])
                r["capture_bytes_read"].append(c["bytes_read"])
                r["capture_phases_ns"].append(dict(c.get("pause_phases_ns") or []))
            rc, out, _, _ = run_measured([gospy, "summary", "--pid", pid, "--json"])
            if rc == 0:
                r["summary_pauses_ns"].append(json.loads(out)["pause_ns"])
            rc, out, _, _ = run_measured([gospy, "top", "--pid", pid, "--count", "1"])
            m = re.search(rb"capture pause (\S+)", out)
            if rc == 0 and m:
                r["top_pauses_ns"].append(parse_duration_ns(m.group(1).decode()))
    finally:
        p.kill()
        p.wait()
    for k in ("capture_pauses_ns", "capture_bytes_read", "summary_pauses_ns", "top_pauses_ns"):
        r[k.replace("_ns", "").replace("pauses", "pause") + "_median" + ("_ns" if k.endswith("_ns") else "")] = median(r[k])
    return r


def small_service_targets(s):
    out = []
    for key, what in (("capture_pause_median_ns", "capture"), ("summary_pause_median_ns", "live summary/dump"),
                      ("top_pause_median_ns", "live top")):
        v = s.get(key)
        out.append({"name": f"small service ({s.get('goroutines')} goroutines, 32 MiB BSS): {what} pause <= 1 ms (median)",
                    "value": v, "target": 1e6, "met": v is not None and v <= 1e6})
    b = s.get("capture_bytes_read_median")
    out.append({"name": "small service: capture reads <= 4 MiB (median)", "value": b, "target": 4 << 20,
                "met": b is not None and b <= 4 << 20})
    return out


def objects_bench(gospy, go, work, repeat, mb=2048):
    """Issue 14: a generated heap of `mb` MiB (tests/fixtures/heapgen, two
    objects per 208 bytes: 2 GiB is about 20.6M objects): the pause of
    `capture --heap` and its "heap spans" phase, and the time and peak RSS of
    `analyze FILE objects`. Medians of `repeat`."""
    exe = os.path.join(work, "heapgen")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0",
           "GOCACHE": os.path.expanduser("~/.cache/gospy/gocache")}
    subprocess.run([go, "build", "-trimpath", "-o", exe, "main.go"], check=True, env=env,
                   cwd=os.path.join(ROOT, "tests/fixtures/heapgen"))
    ready = os.path.join(work, "heapgen.ready")
    p = subprocess.Popen([exe, str(mb), ready], stdin=subprocess.DEVNULL)
    r = {"heap_mb": mb}
    snap = os.path.join(work, "heap.gss")
    try:
        deadline = time.monotonic() + 600
        while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        pauses, phases = [], []
        for _ in range(repeat):
            rc, out, _, _ = run_measured([gospy, "capture", "--pid", str(p.pid), "--heap", "-o", snap, "--json"])
            if rc == 0:
                c = json.loads(out)
                pauses.append(c["pause_ns"])
                phases.append(dict(c.get("pause_phases_ns") or []).get("heap spans"))
                r["bytes_read"] = c.get("bytes_read")
        r["capture_pauses_ns"], r["heap_spans_phase_ns"] = pauses, phases
        r["capture_pause_median_ns"] = median(pauses)
    finally:
        p.kill()
        p.wait()
    walls, rsss = [], []
    for _ in range(repeat):
        rc, out, wall, rss = run_measured([gospy, "analyze", snap, "objects", "--json", "-n", "5"])
        if rc == 0:
            walls.append(wall)
            rsss.append(rss)
            o = json.loads(out)
            r["total_objects"], r["total_bytes"] = o["total_objects"], o["total_bytes"]
    r["objects_s"], r["objects_peak_rss"] = walls, rsss
    r["objects_median_s"] = median(walls)
    r["objects_peak_rss_max"] = max(rsss) if rsss else None
    # analyze retain (issue 14, second milestone): graph, dominators, paths.
    walls, rsss = [], []
    for _ in range(repeat):
        rc, out, wall, rss = run_measured([gospy, "analyze", snap, "retain", "--json", "--top", "5"])
        if rc == 0:
            walls.append(wall)
            rsss.append(rss)
            o = json.loads(out)
            r["retain_edges"], r["retain_top_root"] = o.get("edges"), (o.get("roots") or [{}])[0].get("root")
    r["retain_s"], r["retain_peak_rss"] = walls, rsss
    r["retain_median_s"] = median(walls)
    r["retain_peak_rss_max"] = max(rsss) if rsss else None
    r["snapshot_file_size"] = os.path.getsize(snap) if os.path.exists(snap) else None
    return r


def objects_targets(o):
    s, rss, heap = o.get("objects_median_s"), o.get("objects_peak_rss_max"), o.get("total_bytes") or 0
    return [
        {"name": f"analyze objects of a {o['heap_mb']} MiB heap ({o.get('total_objects')} objects) <= 30 s (median)",
         "value": s, "target": 30, "met": s is not None and s <= 30},
        {"name": "analyze objects peak RSS <= 2.5 x heap (snapshot held in memory + 1.5 x)",
         "value": rss, "target": 2.5 * heap, "met": rss is not None and heap > 0 and rss <= 2.5 * heap},
        {"name": f"analyze retain of a {o['heap_mb']} MiB heap <= 30 s (median)",
         "value": o.get("retain_median_s"), "target": 30,
         "met": o.get("retain_median_s") is not None and o["retain_median_s"] <= 30},
        {"name": "analyze retain peak RSS <= 2.5 x heap (snapshot held in memory + 1.5 x)",
         "value": o.get("retain_peak_rss_max"), "target": 2.5 * heap,
         "met": o.get("retain_peak_rss_max") is not None and heap > 0 and o["retain_peak_rss_max"] <= 2.5 * heap},
    ]


def heap_profile_targets(h):
    ph, pp = h.get("bucket_phase_median_ns"), h.get("pprof_heap_median_s")
    return [
        {"name": f"pause the buckets add at {h['buckets']} buckets <= 1 ms (\"heap profile buckets\" phase, median)",
         "value": ph, "target": 1e6, "met": ph is not None and ph <= 1e6},
        {"name": f"analyze pprof heap at {h['big_buckets']} buckets < 0.5 s (median)",
         "value": pp, "target": 0.5, "met": pp is not None and pp < 0.5},
    ]


def tui_target(t):
    """TUI refresh pause <= top --once pause, medians (pauses of a few ms vary
    between runs: 20% slack, and 1 ms at least)."""
    tm, om = t.get("tui_refresh_median_ns"), t.get("top_once_median_ns")
    return {"name": f"TUI refresh pause <= top --once pause ({t['map_entries']} map entries, medians)",
            "value": tm, "target": om,
            "met": tm is not None and om is not None and tm <= max(om * 1.2, om + 1e6)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--go", default="1.26", help="toolchain version prefix for the fixture")
    ap.add_argument("--no-gcore", action="store_true")
    ap.add_argument("--repeat", type=int, default=5,
                    help="captures and analyses per size (best kept, all pauses recorded)")
    ap.add_argument("--out", default=os.path.join(ROOT, "target/bench/results.json"))
    ap.add_argument("--only", choices=["tui-pause", "heap-profile", "small-service", "objects"], help="run one measurement only")
    ap.add_argument("--objects-mb", type=int, default=2048, help="heap size (MiB) of --only objects")
    ap.add_argument("--gospy", help="measure this gospy binary instead of building target/release/gospy")
    args = ap.parse_args()

    if args.gospy:
        gospy = os.path.abspath(args.gospy)
    else:
        subprocess.run(["cargo", "build", "--release", "-q"], check=True, cwd=ROOT)
        gospy = os.path.join(ROOT, "target/release/gospy")
    version, go = go_toolchain(args.go)
    work = tempfile.mkdtemp(prefix="gospy-bench-")
    exe = build_fixture(go, work)
    if args.only == "tui-pause":
        try:
            t = tui_pause(gospy, exe, work, args.repeat)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results = {"go_version": version, "tui_pause": t, "targets": [tui_target(t)]}
        write_results(args.out, results)
        return
    if args.only == "objects":
        try:
            o = objects_bench(gospy, go, work, args.repeat, args.objects_mb)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results = {"go_version": version, "objects": o, "targets": objects_targets(o)}
        write_results(args.out, results)
        return
    if args.only == "heap-profile":
        try:
            h = heap_profile(gospy, exe, work, args.repeat)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results = {"go_version": version, "heap_profile": h, "targets": heap_profile_targets(h)}
        write_results(args.out, results)
        return
    if args.only == "small-service":
        try:
            sm = small_service(gospy, go, work, args.repeat)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results = {"go_version": version, "small_service": sm, "targets": small_service_targets(sm)}
        write_results(args.out, results)
        return
    have_gcore = shutil.which("gcore") and not args.no_gcore
    results = {"go_version": version, "machine": {"cpus": os.cpu_count()}, "sizes": []}
    analyses = ["summary", "dump", "top", "heap"]
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            p, fx = start_fixture(exe, n, work)
            r = {"goroutines": n, "runtime_stack_all_ns": fx["stack_all_ns"], "runtime_stack_all_bytes": fx["stack_all_bytes"]}
            snap = os.path.join(work, f"b{n}.gss")
            best = None
            pauses = []
            for _ in range(args.repeat):
                rc, out, wall, rss = run_measured([gospy, "capture", "--pid", str(p.pid), "-o", snap, "--json"])
                if rc != 0:
                    continue
                c = json.loads(out)
                pauses.append(c["pause_ns"])
                if best is None or c["pause_ns"] < best["pause_ns"]:
                    best = {**c, "wall_s": wall, "peak_rss": rss}
            r["capture"] = best
            # The first capture of a process can be much slower when the
            # kernel has reclaimed or compacted its idle memory in between
            # (page faults on the target's side); reported, not hidden.
            r["capture_pauses_ns"] = pauses
            rc, out, _, _ = run_measured([gospy, "info", snap, "--json"])
            info = json.loads(out) if rc == 0 else {}
            st = info.get("stats", {})
            r["snapshot"] = {
                "file_size": st.get("file_size"),
                "uncompressed_bytes": st.get("uncompressed_bytes"),
                "per_kind": {k["kind"]: k["bytes"] for k in st.get("per_kind", [])},
                "bytes_per_goroutine_on_disk": (st.get("file_size") or 0) / n,
            }
            if have_gcore:
                core = os.path.join(work, "core")
                rc, _, wall, _ = run_measured(["gcore", "-o", core, str(p.pid)])
                files = [f for f in os.listdir(work) if f.startswith("core")]
                size = sum(os.path.getsize(os.path.join(work, f)) for f in files)
                for f in files:
                    os.unlink(os.path.join(work, f))
                r["gcore"] = {"stopped_s": wall, "file_size": size, "ok": rc == 0}
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            r["analyze"] = {}
            for a in analyses:
                for threads in (1, 2):
                    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
                    walls, rsss, ok = [], [], True
                    # Best of --repeat runs (this is a shared VM: single runs
                    # vary by +-30%); the median is kept too.
                    for _ in range(args.repeat):
                        with open(os.devnull, "wb") as devnull:
                            rc, _, wall, rss = run_measured([gospy, "analyze", snap, a], env=env, stdout=devnull)
                        walls.append(wall)
                        rsss.append(rss)
                        ok = ok and rc == 0
                    walls.sort()
                    r["analyze"][f"{a}_t{threads}"] = {"wall_s": walls[0], "median_wall_s": walls[len(walls) // 2],
                                                      "peak_rss": max(rsss), "ok": ok}
            results["sizes"].append(r)
            print_row(r)
        big_n = max(int(x) for x in args.sizes.split(","))
        results["busy"] = busy_capture(gospy, exe, work, args.repeat, big_n)
        results["tui_pause"] = tui_pause(gospy, exe, work, args.repeat)
        results["heap_profile"] = heap_profile(gospy, exe, work, args.repeat)
        results["small_service"] = small_service(gospy, go, work, args.repeat)
        results["binary_open"] = binary_open(gospy, go, work, args.repeat)
        b = results["binary_open"]
        print(f"opening a {b['executable_bytes'] / 1e6:.1f} MB executable (runtime layout from DWARF): "
              f"{ms(b['binary_load_ns'] or 0)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["targets"] = (check_targets(results) + [tui_target(results["tui_pause"])]
                          + heap_profile_targets(results["heap_profile"])
                          + small_service_targets(results["small_service"]))
    write_results(args.out, results)


def write_results(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    h = results.get("heap_profile")
    if h:
        print(f"heap profile: {h.get('fixture_buckets')} buckets, phase {', '.join(ms(x or 0) for x in h['bucket_phase_ns'])}; "
              f"pause {ms(h['pause_median_ns'] or 0)} (without buckets {ms(h['pause_without_buckets_median_ns'] or 0)}); "
              f"pprof heap at {h.get('big_fixture_buckets')} buckets: {', '.join(f'{x:.2f}s' for x in h['pprof_heap_s'])}")
    t = results.get("tui_pause")
    if t:
        print(f"top --count 1 pauses: {', '.join(ms(x) for x in t['top_once_pauses_ns'])}; "
              f"TUI refreshes: {', '.join(ms(x) for x in t['tui_refresh_pauses_ns'] or [])}; "
              f"capture walking globals: {ms(t['capture_with_globals_pause_ns'] or 0)}")
    sm = results.get("small_service")
    if sm:
        print(f"small service: capture pauses {', '.join(ms(x) for x in sm['capture_pauses_ns'])}, "
              f"read {', '.join(f'{x / 1e6:.2f} MB' for x in sm['capture_bytes_read'])}; "
              f"summary pauses {', '.join(ms(x) for x in sm['summary_pauses_ns'])}; "
              f"top pauses {', '.join(ms(x) for x in sm['top_pauses_ns'])}")
    print()
    for t in results["targets"]:
        print(f"{'MET ' if t['met'] else 'GAP '} {t['name']}: {t['value']} (target {t['target']})")
    print(f"\nresults: {path}")


def ms(ns):
    return f"{ns / 1e6:.1f} ms"


def print_row(r):
    c = r["capture"] or {}
    a = r["analyze"]
    g = r.get("gcore", {})
    print(f"{r['goroutines']:>7} goroutines | runtime.Stack(all) {ms(r['runtime_stack_all_ns'])} | "
          f"pause {ms(c.get('pause_ns', 0))} (all: {', '.join(ms(x) for x in r.get('capture_pauses_ns', []))}) | read {c.get('bytes_read', 0) / 1e6:.1f} MB | "
          f"file {r['snapshot']['file_size'] / 1e6:.2f} MB ({r['snapshot']['bytes_per_goroutine_on_disk']:.0f} B/g) | "
          f"capture wall {c.get('wall_s', 0):.2f}s rss {c.get('peak_rss', 0) / 1e6:.0f} MB | "
          f"gcore {g.get('stopped_s', 0):.2f}s {g.get('file_size', 0) / 1e6:.0f} MB | "
          + " ".join(f"{k} {v['wall_s']:.2f}s" for k, v in a.items()))


def check_targets(res):
    t = []
    big = max(res["sizes"], key=lambda r: r["goroutines"])
    c = big["capture"] or {}
    n = big["goroutines"]
    t.append({"name": f"pause at {n} goroutines <= runtime.Stack(all)/10",
              "value": c.get("pause_ns"), "target": big["runtime_stack_all_ns"] / 10,
              "met": c.get("pause_ns", 1e18) <= big["runtime_stack_all_ns"] / 10})
    t.append({"name": f"pause at {n} goroutines < 50 ms", "value": c.get("pause_ns"), "target": 50e6,
              "met": c.get("pause_ns", 1e18) < 50e6})
    # Issue 16: the median of the captures, not the best one.
    pm = median(big.get("capture_pauses_ns") or [1e18])
    t.append({"name": f"pause at {n} goroutines <= 10 ms (median)", "value": pm, "target": 10e6,
              "met": pm <= 10e6})
    t.append({"name": "snapshot bytes per parked goroutine on disk <= 200",
              "value": big["snapshot"]["bytes_per_goroutine_on_disk"], "target": 200,
              "met": big["snapshot"]["bytes_per_goroutine_on_disk"] <= 200})
    d1 = big["analyze"]["dump_t1"]["wall_s"]
    d2 = big["analyze"]["dump_t2"]["wall_s"]
    t.append({"name": f"analyze dump at {n} <= runtime.Stack(all)", "value": d2,
              "target": big["runtime_stack_all_ns"] / 1e9, "met": d2 <= big["runtime_stack_all_ns"] / 1e9})
    for a in ("summary", "top"):
        v = big["analyze"][f"{a}_t2"]["wall_s"]
        t.append({"name": f"analyze {a} at {n} < 0.3 s", "value": v, "target": 0.3, "met": v < 0.3})
    t.append({"name": "dump: 2 threads >= 1.6x faster than 1", "value": d1 / d2 if d2 else None, "target": 1.6,
              "met": d2 > 0 and d1 / d2 >= 1.6})
    # Bytes read against what a capture must read: g structs, used stacks and
    # the fixed part (data segments, allgs, Ms, Ps); the rest is heap
    # metadata and blocked-on objects.
    pk = big["snapshot"]["per_kind"]
    need = sum(pk.get(k, 0) for k in ("G", "Stack", "Data", "Allgs", "M", "P")) or 1
    ratio = c.get("bytes_read", 0) / need
    t.append({"name": "bytes read <= 1.2 x (g structs + used stacks + fixed)", "value": round(ratio, 3),
              "target": 1.2, "met": ratio <= 1.2})
    # Linear growth: pause per goroutine at the largest size vs the middle
    # one, and read system calls per goroutine (batched, not one each).
    sizes = sorted(res["sizes"], key=lambda r: r["goroutines"])
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        pa = (a["capture"] or {}).get("pause_ns", 0) / a["goroutines"]
        pb = (b["capture"] or {}).get("pause_ns", 0) / b["goroutines"]
        growth = pb / pa if pa else None
        t.append({"name": f"pause per goroutine at {b['goroutines']} <= 1.5 x at {a['goroutines']} (linear)",
                  "value": round(growth, 2) if growth else None, "target": 1.5,
                  "met": growth is not None and growth <= 1.5})
    calls = c.get("read_calls", 0) / n
    t.append({"name": "read system calls per goroutine <= 0.01", "value": round(calls, 5), "target": 0.01,
              "met": calls <= 0.01})
    bo = res.get("binary_open") or {}
    t.append({"name": f"open a {bo.get('executable_bytes', 0) / 1e6:.0f} MB executable (lazy DWARF) < 50 ms",
              "value": bo.get("binary_load_ns"), "target": 50e6,
              "met": bo.get("binary_load_ns") is not None and bo["binary_load_ns"] < 50e6
              and bo.get("executable_bytes", 0) >= 30e6})
    unc = big["snapshot"]["uncompressed_bytes"] or 1
    rss = max(v["peak_rss"] for v in big["analyze"].values())
    t.append({"name": "analyze peak RSS <= 2x uncompressed snapshot", "value": rss, "target": 2 * unc,
              "met": rss <= 2 * unc})
    return t


if __name__ == "__main__":
    main()
