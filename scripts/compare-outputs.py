#!/usr/bin/env python3
"""Byte-for-byte comparison of every analysis between two gospy builds.

A refactoring must not change what users see. This script captures a corpus
of snapshots from the test fixtures (every installed Go version; plain, PIE,
-s -w; --redact, --non-blocking, --full; a gdb core) once, then runs every
analysis (text and --json) with the old and the new gospy on the same inputs
and reports every difference.

  python3 scripts/compare-outputs.py corpus DIR         # capture the corpus (needs Go toolchains, ptrace)
  python3 scripts/compare-outputs.py outputs BIN DIR OUT  # run every analysis of BIN over DIR into OUT
  python3 scripts/compare-outputs.py compare REV [DIR]    # build REV (git worktree) and HEAD's tree, compare

`compare` builds REV in a temporary worktree (cargo build --release), the
working tree as it is, captures the corpus with REV's gospy if DIR has none,
and exits 1 if any output differs. Outputs are stdout, stderr and the exit
status of each command; written files (pprof, convert) are compared too.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def toolchains():
    """(version, go binary) of every toolchain the install script provides."""
    p = subprocess.run(["bash", "scripts/install-go-toolchains.sh"], cwd=ROOT, capture_output=True, text=True)
    out = []
    for line in p.stdout.splitlines():
        v, _, go = line.strip().partition(" ")
        if go and os.path.isfile(go):
            out.append(("go" + v.lstrip("go"), go))
    if not out:
        sys.exit("no Go toolchains (run scripts/install-go-toolchains.sh)")
    return out


def build(go, fixture, out, pie=False, ldflags=""):
    cmd = [go, "build", "-trimpath"]
    if pie:
        cmd.append("-buildmode=pie")
    if ldflags:
        cmd.append("-ldflags=" + ldflags)
    cmd += ["-o", out, "main.go"]
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-buildvcs=false", CGO_ENABLED="0",
               GOWORK="off", GOENV="off", GOPROXY="off",
               GOCACHE=os.path.expanduser("~/.cache/gospy/go-build"))
    for k in ("GOROOT", "GOOS", "GOARCH", "GOEXPERIMENT", "GOAMD64"):
        env.pop(k, None)
    subprocess.run(cmd, cwd=os.path.join(ROOT, "tests/fixtures", fixture), env=env, check=True)


class Running:
    def __init__(self, exe):
        self.dir = tempfile.mkdtemp(prefix="gospy-cmp-")
        self.p = subprocess.Popen([exe, self.dir], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            if os.path.exists(os.path.join(self.dir, "ready")):
                return
            if self.p.poll() is not None:
                raise RuntimeError("%s exited early" % exe)
            time.sleep(0.05)
        raise RuntimeError("%s not ready" % exe)

    def stop(self):
        self.p.kill()
        self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def corpus(gospy, d):
    os.makedirs(d, exist_ok=True)
    bins = os.path.join(d, "bin")
    os.makedirs(bins, exist_ok=True)
    tcs = toolchains()
    plan = []
    for v, go in tcs:
        for fx in ("goroutines", "globals", "heap"):
            plan.append((v, go, fx, "plain", False, ""))
        if v.startswith(("go1.19", "go1.22", "go1.27")):
            plan.append((v, go, "goroutines", "pie", True, ""))
            plan.append((v, go, "goroutines", "sw", False, "-s -w"))
            plan.append((v, go, "heap", "sw", False, "-s -w"))
    for v, go, fx, kind, pie, ld in plan:
        exe = os.path.join(bins, "%s-%s-%s" % (fx, v, kind))
        if not os.path.exists(exe):
            build(go, fx, exe, pie, ld)
        name = os.path.basename(exe)
        if os.path.exists(os.path.join(d, name + ".b.gss")):
            continue
        r = Running(exe)
        try:
            extra = {"goroutines": [], "globals": [], "heap": []}[fx]
            subprocess.run([gospy, "capture", "--pid", str(r.p.pid), "-o", os.path.join(d, name + ".a.gss"),
                            "--embed-binary"] + extra, check=True, stdout=subprocess.DEVNULL)
            if fx == "goroutines" and kind == "plain" and v.startswith(("go1.19", "go1.27")):
                subprocess.run([gospy, "capture", "--pid", str(r.p.pid), "-o", os.path.join(d, name + ".redact.gss"),
                                "--embed-binary", "--redact"], check=True, stdout=subprocess.DEVNULL)
                subprocess.run([gospy, "capture", "--pid", str(r.p.pid), "-o", os.path.join(d, name + ".nb.gss"),
                                "--embed-binary", "--non-blocking"], check=True, stdout=subprocess.DEVNULL)
                subprocess.run([gospy, "capture", "--pid", str(r.p.pid), "-o", os.path.join(d, name + ".full.gss"),
                                "--embed-binary", "--full"], check=True, stdout=subprocess.DEVNULL)
                if shutil.which("gcore"):
                    subprocess.run(["gcore", "-o", os.path.join(d, name + ".core"), str(r.p.pid)],
                                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    os.rename(os.path.join(d, "%s.core.%d" % (name, r.p.pid)), os.path.join(d, name + ".core"))
            time.sleep(0.2)
            subprocess.run([gospy, "capture", "--pid", str(r.p.pid), "-o", os.path.join(d, name + ".b.gss"),
                            "--embed-binary"] + extra, check=True, stdout=subprocess.DEVNULL)
        finally:
            r.stop()
    sample = os.path.join(ROOT, "samples/goroutines-go1.27.gss")
    shutil.copy(sample, os.path.join(d, "sample.a.gss"))
    print("corpus: %d inputs in %s" % (len([f for f in os.listdir(d) if f.endswith((".gss", ".core"))]), d))


ANALYSES = [
    ["summary"], ["summary", "--json"], ["summary", "--all"], ["summary", "--all", "--json"],
    ["dump"], ["dump", "--json"], ["dump", "--all"], ["dump", "--labels", "--wait-info"],
    ["dump", "--all", "--json"],
    ["top"], ["top", "--json"], ["top", "--by", "go"], ["top", "--by", "current"], ["top", "--by", "stack"],
    ["top", "--by", "wait"], ["top", "--by", "label", "worker"], ["top", "--filter", "main\\."],
    ["heap"], ["heap", "--json"], ["heap", "--large"],
    ["vars"], ["vars", "--json"], ["vars", "^main\\."],
    ["folded"],
]


def run(cmd, out_base, files=()):
    p = subprocess.run(cmd, capture_output=True, env=dict(os.environ, NO_COLOR="1"), timeout=600)
    with open(out_base + ".out", "wb") as f:
        f.write(p.stdout)
    with open(out_base + ".err", "wb") as f:
        f.write(p.stderr + b"\nexit %d\n" % p.returncode)
    for src, suffix in files:
        if os.path.exists(src):
            shutil.move(src, out_base + suffix)
    return p


def outputs(gospy, d, out):
    os.makedirs(out, exist_ok=True)
    inputs = sorted(f for f in os.listdir(d) if f.endswith((".gss", ".core")))
    n = 0
    for inp in inputs:
        path = os.path.join(d, inp)
        base = os.path.join(out, inp)
        for a in ANALYSES:
            run([gospy, "analyze", path] + a, base + "." + "_".join(x.strip("-^\\.") for x in a))
            n += 1
        run([gospy, "info", path], base + ".info")
        run([gospy, "info", path, "--json"], base + ".info_json")
        tmp = os.path.join(tempfile.gettempdir(), "gospy-compare-tmp.pb.gz")  # paths are printed
        run([gospy, "analyze", path, "pprof", "-o", tmp], base + ".pprof", [(tmp, ".pb.gz")])
        if inp.endswith(".gss"):
            tmp = os.path.join(tempfile.gettempdir(), "gospy-compare-tmp.core")
            run([gospy, "convert", path, "-o", tmp], base + ".convert", [(tmp, ".corefile")])
        n += 4
        if "globals" in inp and inp.endswith(".a.gss"):
            names = json.loads(subprocess.run([gospy, "analyze", path, "vars", "--json"],
                                              capture_output=True).stdout or b"[]")
            for v in names if isinstance(names, list) else names.get("vars", []):
                name = v["name"] if isinstance(v, dict) else v
                if not name.startswith("main."):
                    continue
                run([gospy, "analyze", path, "var", name, "--json"], base + ".var." + name)
                run([gospy, "analyze", path, "var", name], base + ".vartext." + name)
                n += 2
        if inp.endswith(".a.gss"):
            other = path[:-len(".a.gss")] + ".b.gss"
            if os.path.exists(other):
                run([gospy, "diff", path, other], base + ".diff")
                run([gospy, "diff", path, other, "--json"], base + ".diff_json")
                run([gospy, "diff", path, other, "--by", "current"], base + ".diff_current")
                n += 3
    # bad input: one line and an exit code
    bad = os.path.join(tempfile.gettempdir(), "gospy-compare-truncated.gss")  # same path for both builds
    with open(os.path.join(d, inputs[0]), "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])
    run([gospy, "analyze", bad, "summary"], os.path.join(out, "bad.truncated"))
    os.remove(bad)
    run([gospy, "analyze", "/nonexistent.gss", "summary"], os.path.join(out, "bad.missing"))
    print("outputs: %d commands over %d inputs into %s" % (n, len(inputs), out))


def compare_dirs(a, b):
    diffs = []
    for f in sorted(set(os.listdir(a)) | set(os.listdir(b))):
        pa, pb = os.path.join(a, f), os.path.join(b, f)
        if not (os.path.exists(pa) and os.path.exists(pb)):
            diffs.append("%s: only in %s" % (f, a if os.path.exists(pa) else b))
            continue
        with open(pa, "rb") as x, open(pb, "rb") as y:
            if x.read() != y.read():
                diffs.append(f)
    return diffs


def cargo_build(tree, target):
    subprocess.run(["cargo", "build", "--release", "-q", "--target-dir", target], cwd=tree, check=True)
    return os.path.join(target, "release", "gospy")


def compare(rev, d):
    work = os.path.expanduser("~/.cache/gospy/compare")
    os.makedirs(work, exist_ok=True)
    tree = os.path.join(work, "old-tree")
    subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, capture_output=True)
    subprocess.run(["git", "worktree", "add", "--detach", tree, rev], cwd=ROOT, check=True, capture_output=True)
    old = cargo_build(tree, os.path.join(work, "old-target"))
    new = cargo_build(ROOT, os.path.join(ROOT, "target"))
    if not os.path.isdir(d) or not any(f.endswith(".gss") for f in os.listdir(d)):
        corpus(old, d)
    oa, ob = os.path.join(work, "out-old"), os.path.join(work, "out-new")
    for o in (oa, ob):
        shutil.rmtree(o, ignore_errors=True)
    outputs(old, d, oa)
    outputs(new, d, ob)
    diffs = compare_dirs(oa, ob)
    subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, capture_output=True)
    for x in diffs:
        print("DIFFERS:", x)
    total = len(os.listdir(oa))
    print("compare-outputs: %d files, %d identical, %d differ (old %s, new working tree)" % (
        total, total - len(diffs), len(diffs), rev))
    return 1 if diffs else 0


def main():
    a = sys.argv[1:]
    if a[:1] == ["corpus"] and len(a) == 2:
        corpus(os.environ.get("GOSPY", os.path.join(ROOT, "target/release/gospy")), a[1])
    elif a[:1] == ["outputs"] and len(a) == 4:
        outputs(a[1], a[2], a[3])
    elif a[:1] == ["compare"] and len(a) in (2, 3):
        return compare(a[1], a[2] if len(a) == 3 else os.path.expanduser("~/.cache/gospy/compare/corpus"))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
