#!/usr/bin/env python3
"""Generate gorescue's real Go dump fixtures (driven by scripts/make-fixtures.sh).

Builds tests/goprog with every toolchain that scripts/go-toolchains.sh lists, starts every
long-running job (wedge, crash, listing, synctest, labels, strace variants, arm64) at once,
waits once for > 60 s after the last "ready" so that headers carry "1 minutes", then signals
them one after another. Short jobs (panics, fatal errors) run during that wait.

Writes tests/fixtures/go<VERSION>/<name>.txt + <name>.meta,
       tests/fixtures/strace/go<VERSION>/<variant>.log + .stderr + .meta,
       tests/fixtures/arm64/go<VERSION>/sigquit-wedge.txt + .meta.
Standard library only.
"""
import argparse
import concurrent.futures as cf
import datetime as dt
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROG = os.path.join(ROOT, "tests", "goprog")
FIX = os.path.join(ROOT, "tests", "fixtures")
TARGET = os.path.join(ROOT, "target")
BIN = os.path.join(TARGET, "goprog-bin")
WORK = os.path.join(TARGET, "fixture-work")

WAIT_AFTER_READY = 66.0  # seconds; > 60 so that "1 minutes" shows

LOG_LOCK = threading.Lock()


def log(*a):
    with LOG_LOCK:
        print(time.strftime("%H:%M:%S"), *a, flush=True)


def vkey(v):
    return tuple(int(x) for x in v.split("."))


def now_rfc3339():
    ns = time.time_ns()
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % (ns % 1_000_000_000)


def go_env(version):
    e = dict(os.environ)
    for k in ("GOROOT", "GOFLAGS", "GOEXPERIMENT", "GODEBUG", "GOTRACEBACK", "GOARCH", "GOOS", "GOMAXPROCS", "GOGC"):
        e.pop(k, None)
    e.update(
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOFLAGS="",
        GOPATH=os.path.join(TARGET, "gopath"),
        GOCACHE=os.path.join(TARGET, "gocache", version),
        CGO_ENABLED="0",
    )
    return e


def run_env(**extra):
    e = dict(os.environ)
    for k in ("GODEBUG", "GOTRACEBACK", "GOMAXPROCS", "GOGC", "GOEXPERIMENT"):
        e.pop(k, None)
    e.update(extra)
    return e


def no_core():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


# ------------------------------------------------------------------------------------------
# counting (what tests compare the parser against)

LOC_RE = re.compile(rb"^\t.*:\d+( \+0x[0-9a-f]+)?( fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x[0-9a-f]+)?$")
HDR_RE = re.compile(rb"^goroutine \d+ ")


def count(data):
    lines = data.split(b"\n")
    goroutines = frames = created = elided = 0
    minutes = []
    in_g = False
    prev = b""
    for ln in lines:
        if HDR_RE.match(ln):
            goroutines += 1
            in_g = True
            m = re.search(rb", (\d+) minutes", ln)
            if m:
                minutes.append(int(m.group(1)))
        elif in_g and LOC_RE.match(ln) and not prev.startswith(b"created by "):
            frames += 1
        if ln.startswith(b"created by "):
            created += 1
        if ln.startswith(b"...") and b"elided" in ln:
            elided += 1
        prev = ln
    return {
        "goroutines": goroutines,
        "frames": frames,
        "created_by": created,
        "elided_markers": elided,
        "goroutines_with_minutes": len(minutes),
        "max_minutes": max(minutes) if minutes else 0,
        "sigquit_sections": data.count(b"SIGQUIT: quit"),
        "bytes": len(data),
        "lines": data.count(b"\n"),
    }


def write_meta(path, fields):
    with open(path, "w") as f:
        for k, v in fields.items():
            f.write("%s=%s\n" % (k, v))


# ------------------------------------------------------------------------------------------
# build


def toolchains():
    out = subprocess.run([os.path.join(ROOT, "scripts", "go-toolchains.sh")], check=True,
                         capture_output=True, text=True).stdout
    tcs = []
    for line in out.splitlines():
        v, p = line.split(None, 1)
        tcs.append((v, p))
    return tcs


def sh(cmd, env, cwd, what):
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (what, r.returncode, (r.stderr or r.stdout)[-2000:]))


def go127_module():
    """A copy of tests/goprog whose go.mod says go 1.27 (labels in tracebacks by default)."""
    d = os.path.join(TARGET, "goprog-go1.27")
    if os.path.exists(d):
        shutil.rmtree(d)
    shutil.copytree(PROG, d)
    with open(os.path.join(d, "go.mod"), "w") as f:
        f.write("module dumpprog\n\ngo 1.27\n")
    return d


def build(v, go, arm64_versions):
    out = os.path.join(BIN, v)
    os.makedirs(out, exist_ok=True)
    env = go_env(v)
    built = {}
    sh([go, "build", "-o", os.path.join(out, "dumpprog"), "."], env, PROG, "go%s build" % v)
    built["dumpprog"] = os.path.join(out, "dumpprog")
    if vkey(v) >= (1, 25):
        sh([go, "test", "-c", "-o", os.path.join(out, "bubble.test"), "."], env, PROG, "go%s test -c" % v)
        built["bubble"] = os.path.join(out, "bubble.test")
    elif vkey(v) >= (1, 24):
        e = dict(env, GOEXPERIMENT="synctest")
        sh([go, "test", "-c", "-o", os.path.join(out, "bubble.test"), "."], e, PROG, "go%s GOEXPERIMENT=synctest test -c" % v)
        built["bubble"] = os.path.join(out, "bubble.test")
    if vkey(v) >= (1, 27):
        d = go127_module()
        sh([go, "build", "-o", os.path.join(out, "dumpprog-go1.27mod"), "."], env, d, "go%s build (go 1.27 module)" % v)
        built["dumpprog127"] = os.path.join(out, "dumpprog-go1.27mod")
    if v in arm64_versions:
        e = dict(env, GOARCH="arm64")
        sh([go, "build", "-o", os.path.join(out, "dumpprog-arm64"), "."], e, PROG, "go%s GOARCH=arm64 build" % v)
        built["arm64"] = os.path.join(out, "dumpprog-arm64")
    log("built go%s: %s" % (v, " ".join(sorted(built))))
    return built


# ------------------------------------------------------------------------------------------
# jobs


class SignalJob:
    """A process that prints "ready", waits, and is then sent SIGQUIT (optionally under strace)."""

    def __init__(self, name, version, argv, out_txt, meta_extra=None, env=None, ready_in="stdout",
                 strace=None, strace_log=None, noise=False, kind="dump", sig=True):
        self.name, self.version, self.argv = name, version, argv
        self.out_txt = out_txt
        self.meta_extra = meta_extra or {}
        self.env = env or run_env()
        self.ready_in = ready_in
        self.strace = strace  # list of strace flags, or None
        self.strace_log = strace_log  # path for -o, or "stderr" (strace's own stderr into that file)
        self.noise = noise
        self.kind = kind
        self.sig = sig
        self.proc = None
        self.ready_at = None
        self.error = None
        tag = re.sub(r"[^A-Za-z0-9.]+", "_", "%s-%s" % (version, name))
        self.work = os.path.join(WORK, tag)

    def start(self):
        os.makedirs(self.work, exist_ok=True)
        self.stdout_path = os.path.join(self.work, "stdout")
        self.stderr_path = os.path.join(self.work, "stderr")
        so, se = open(self.stdout_path, "wb"), open(self.stderr_path, "wb")
        pre = no_core
        self.reader = None
        argv = list(self.argv)
        if self.noise:
            r, w = os.pipe()
            # a slow reader, so that the noise writers sit in long write(2) calls
            self.reader = subprocess.Popen(
                [sys.executable, "-c",
                 "import os,time\nwhile True:\n d=os.read(0,4096)\n if not d: break\n time.sleep(0.02)\n"],
                stdin=r, stdout=subprocess.DEVNULL)
            os.close(r)
            argv += ["-noise-fd", str(w)]
        self.proc = subprocess.Popen(argv, stdout=so, stderr=se, env=self.env, preexec_fn=pre,
                                     pass_fds=(w,) if self.noise else ())
        if self.noise:
            os.close(w)
        so.close()
        se.close()
        self.started = time.time()

    def poll_ready(self):
        if self.ready_at:
            return True
        p = self.stdout_path if self.ready_in == "stdout" else self.stderr_path
        with open(p, "rb") as f:
            if re.search(rb"(^|\n)ready\n", f.read()):
                self.ready_at = time.time()
                return True
        if self.proc.poll() is not None:
            self.error = "exited %s before ready" % self.proc.returncode
            return True
        return False

    def attach_strace(self):
        if not self.strace:
            return
        cmd = ["strace", "-p", str(self.proc.pid)] + self.strace
        self.strace_err = os.path.join(self.work, "strace.stderr")
        if self.strace_log != "stderr":
            cmd += ["-o", os.path.join(self.work, "strace.log")]
        self.strace_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.strace_err, "wb"))

    def strace_attached(self):
        if not self.strace:
            return True
        with open(self.strace_err, "rb") as f:
            return b"attached" in f.read()

    def signal(self):
        if self.error or not self.sig:
            return
        self.signal_time = now_rfc3339()
        os.kill(self.proc.pid, signal.SIGQUIT)

    def finish(self):
        try:
            rc = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self.error = (self.error or "") + " did not exit within 120 s after SIGQUIT"
        if self.strace:
            try:
                self.strace_proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.strace_proc.terminate()
                self.strace_proc.wait()
        if self.reader:
            self.reader.kill()
            self.reader.wait()
        self.rc = rc
        if self.error:
            log("FAILED %s go%s: %s" % (self.name, self.version, self.error))
            return
        self.save()

    def save(self):
        os.makedirs(os.path.dirname(self.out_txt), exist_ok=True)
        src = self.stdout_path if self.kind == "listing" else self.stderr_path
        data = open(src, "rb").read()
        if self.kind == "listing":
            err = open(self.stderr_path, "rb").read()
            m = re.search(rb"listing_time=(\S+)", err)
            self.signal_time = m.group(1).decode() if m else ""
        meta = {"go_version": "go" + self.version, "mode": self.name, "argv": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(self.argv))}
        meta.update(self.meta_extra)
        meta["exit_code"] = self.rc if self.rc >= 0 else 128 - self.rc
        key = "listing_time" if self.kind == "listing" else "signal_time"
        meta[key] = getattr(self, "signal_time", "")
        meta["signal_time_source"] = ("program's time.Now() just before WriteTo" if self.kind == "listing"
                                      else "generator wall clock just before kill(SIGQUIT)")
        if self.strace:
            logp = self.strace_err if self.strace_log == "stderr" else os.path.join(self.work, "strace.log")
            shutil.copyfile(logp, self.out_txt)
            base = self.out_txt[: -len(".log")]
            with open(base + ".stderr", "wb") as f:
                f.write(data)
            meta["strace_flags"] = " ".join(self.strace) + ("" if self.strace_log == "stderr" else " -o FILE")
            meta["strace_output"] = "strace's stderr (2> FILE)" if self.strace_log == "stderr" else "-o FILE"
            meta["stderr_file"] = os.path.basename(base + ".stderr")
            meta["dump_in_log"] = "yes" if re.search(rb"(^|[ \]])write\(2, ", open(self.out_txt, "rb").read(), re.M) else "no (SIGQUIT went to a thread strace was not tracing)"
            meta_path = base + ".meta"
        else:
            with open(self.out_txt, "wb") as f:
                f.write(data)
            meta_path = re.sub(r"\.txt$", ".meta", self.out_txt)
        meta.update(count(data))
        write_meta(meta_path, meta)
        log("wrote %s (exit %s, %d goroutines)" % (os.path.relpath(self.out_txt, ROOT), meta["exit_code"], meta["goroutines"]))


def short_job(name, version, argv, out_txt, env=None, timeout=60, meta_extra=None, retries=1):
    """Run a program that dies by itself (panic, fatal error); keep its stderr."""
    for attempt in range(retries):
        t0 = now_rfc3339()
        try:
            r = subprocess.run(argv, env=env or run_env(), capture_output=True, timeout=timeout, preexec_fn=no_core)
        except subprocess.TimeoutExpired:
            log("FAILED %s go%s: timeout (attempt %d)" % (name, version, attempt + 1))
            continue
        break
    else:
        return
    os.makedirs(os.path.dirname(out_txt), exist_ok=True)
    with open(out_txt, "wb") as f:
        f.write(r.stderr)
    meta = {"go_version": "go" + version, "mode": name,
            "argv": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))}
    meta.update(meta_extra or {})
    meta["exit_code"] = r.returncode if r.returncode >= 0 else 128 - r.returncode
    meta["start_time"] = t0
    meta.update(count(r.stderr))
    write_meta(re.sub(r"\.txt$", ".meta", out_txt), meta)
    log("wrote %s (exit %s)" % (os.path.relpath(out_txt, ROOT), meta["exit_code"]))


STRACE_VARIANTS = [
    # name, flags, where strace writes, noise
    ("plain", ["-e", "trace=write", "-s", "512"], "o", False),
    ("f", ["-f", "-e", "trace=write", "-s", "512"], "o", False),
    ("f-tt", ["-f", "-tt", "-e", "trace=write", "-s", "512"], "o", False),
    ("t", ["-t", "-e", "trace=write", "-s", "512"], "o", False),
    ("ttt", ["-ttt", "-e", "trace=write", "-s", "512"], "o", False),
    ("r", ["-r", "-e", "trace=write", "-s", "512"], "o", False),
    ("x", ["-x", "-e", "trace=write", "-s", "512"], "o", False),
    ("xx", ["-xx", "-e", "trace=write", "-s", "512"], "o", False),
    ("s65536", ["-e", "trace=write", "-s", "65536"], "o", False),
    ("s32", ["-e", "trace=write"], "o", False),
    ("f-interleave", ["-f", "-e", "trace=write", "-s", "512"], "o", True),
    ("stderr", ["-s", "512", "-ewrite"], "stderr", False),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated versions (default: all installed)")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-arm64", action="store_true")
    ap.add_argument("--wait", type=float, default=WAIT_AFTER_READY)
    ap.add_argument("--many", type=int, default=0,
                    help="also make target/fixture-work/many-N.txt (not a fixture) with the newest toolchain")
    args = ap.parse_args()

    tcs = toolchains()
    if args.only:
        want = set(args.only.split(","))
        tcs = [(v, p) for v, p in tcs if v in want]
    if not tcs:
        sys.exit("no Go toolchains: run scripts/install-go.sh")
    newest = max(tcs, key=lambda t: vkey(t[0]))[0]
    debian = [v for v, p in tcs if p.startswith("/usr/lib/go-")]
    strace_versions = [] if args.no_strace or not shutil.which("strace") else sorted(set(debian + [newest]), key=vkey)
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    arm64_versions = [] if args.no_arm64 or not qemu else [newest]

    if os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)

    with cf.ThreadPoolExecutor(max_workers=3) as ex:
        futs = {ex.submit(build, v, go, arm64_versions): v for v, go in tcs}
        bins = {}
        for f in cf.as_completed(futs):
            v = futs[f]
            try:
                bins[v] = f.result()
            except Exception as e:  # keep going with the others
                log("FAILED build go%s: %s" % (v, e))

    jobs = []
    for v, _ in tcs:
        if v not in bins:
            continue
        b = bins[v]
        d = os.path.join(FIX, "go" + v)
        prog = b["dumpprog"]
        jobs.append(SignalJob("wedge", v, [prog, "-mode", "wedge"], os.path.join(d, "sigquit-wedge.txt")))
        jobs.append(SignalJob("crash", v, [prog, "-mode", "wedge"], os.path.join(d, "crash.txt"),
                              env=run_env(GOTRACEBACK="crash"), meta_extra={"env": "GOTRACEBACK=crash"}))
        jobs.append(SignalJob("listing", v, [prog, "-mode", "listing", "-wait", "%ds" % int(args.wait)],
                              os.path.join(d, "listing.txt"), ready_in="stderr", kind="listing", sig=False))
        if "bubble" in b:
            # go.mod says go 1.19, so synctest (1.24-1.26) needs asynctimerchan=0 spelled out
            ev = {"DUMPPROG_BUBBLE": "1"} if vkey(v) >= (1, 27) else {"DUMPPROG_BUBBLE": "1", "GODEBUG": "asynctimerchan=0"}
            jobs.append(SignalJob("synctest", v, [b["bubble"], "-test.run", "^TestBubble$", "-test.v"],
                                  os.path.join(d, "synctest.txt"), env=run_env(**ev),
                                  meta_extra={"env": " ".join("%s=%s" % kv for kv in sorted(ev.items()))
                                              + (" (built with GOEXPERIMENT=synctest)" if vkey(v) < (1, 25) else "")}))
        if vkey(v)[:2] == (1, 26):
            jobs.append(SignalJob("labels", v, [prog, "-mode", "wedge"], os.path.join(d, "labels.txt"),
                                  env=run_env(GODEBUG="tracebacklabels=1"), meta_extra={"env": "GODEBUG=tracebacklabels=1"}))
        if "dumpprog127" in b:
            jobs.append(SignalJob("labels", v, [b["dumpprog127"], "-mode", "wedge"], os.path.join(d, "labels.txt"),
                                  meta_extra={"note": "built from a copy of tests/goprog whose go.mod says go 1.27"}))
        if "arm64" in b:
            jobs.append(SignalJob("wedge-arm64", v, [qemu, b["arm64"], "-mode", "wedge"],
                                  os.path.join(FIX, "arm64", "go" + v, "sigquit-wedge.txt"),
                                  meta_extra={"goarch": "arm64", "runner": os.path.basename(qemu)}))
        if v in strace_versions:
            for name, flags, where, noise in STRACE_VARIANTS:
                # without -f only the main thread is traced: keep it idle (no spinner, whose
                # preemption SIGURGs make the kernel pick another thread for SIGQUIT)
                argv = [prog, "-mode", "wedge"] + (["-noise", "3"] if noise else []) + ([] if "-f" in flags else ["-nospin"])
                jobs.append(SignalJob("strace-" + name, v, argv,
                                      os.path.join(FIX, "strace", "go" + v, name + ".log"),
                                      strace=flags, strace_log="stderr" if where == "stderr" else "o",
                                      noise=noise,
                                      meta_extra={"note": "3 goroutines write 64 KiB blocks in a loop to an extra fd (a pipe read slowly)"} if noise else None))
    many_job = None
    if args.many:
        many_job = SignalJob("many", newest, [bins[newest]["dumpprog"], "-mode", "many", "-n", str(args.many), "-nospin"],
                             os.path.join(WORK, "many-%d.txt" % args.many))
        jobs.append(many_job)

    log("starting %d long jobs" % len(jobs))
    for j in jobs:
        j.start()
        time.sleep(0.05)

    # short jobs run while the long ones wait
    def shorts():
        for v, _ in tcs:
            if v not in bins:
                continue
            prog = bins[v]["dumpprog"]
            d = os.path.join(FIX, "go" + v)
            for m in ("panic", "panic-recovered", "panic-nested", "panic-nil", "fatal-deadlock"):
                short_job(m, v, [prog, "-mode", m], os.path.join(d, m + ".txt"))
            short_job("panic", v, [prog, "-mode", "panic"], os.path.join(d, "panic-all.txt"),
                      env=run_env(GOTRACEBACK="all"), meta_extra={"env": "GOTRACEBACK=all"})
            if "bubble" in bins[v]:
                ev = {"DUMPPROG_BUBBLE": "deadlock"}
                if vkey(v) < (1, 27):
                    ev["GODEBUG"] = "asynctimerchan=0"
                short_job("synctest-deadlock", v, [bins[v]["bubble"], "-test.run", "^TestBubble$"],
                          os.path.join(d, "synctest-deadlock.txt"), env=run_env(**ev),
                          meta_extra={"env": " ".join("%s=%s" % kv for kv in sorted(ev.items()))})
            short_job("fatal-mapwrites", v, [prog, "-mode", "fatal-mapwrites"], os.path.join(d, "fatal-mapwrites.txt"),
                      timeout=30, retries=3)
    st = threading.Thread(target=shorts)
    st.start()

    deadline = time.time() + 180
    while not all(j.poll_ready() for j in jobs):
        if time.time() > deadline:
            for j in jobs:
                if not j.ready_at and not j.error:
                    j.error = "not ready after 180 s"
            break
        time.sleep(0.2)
    last_ready = max((j.ready_at for j in jobs if j.ready_at), default=time.time())
    log("all ready; waiting %.0f s" % (last_ready + args.wait - time.time()))
    while time.time() < last_ready + args.wait:
        time.sleep(0.2)
    log("signalling")
    plain = [j for j in jobs if not j.strace]
    traced = [j for j in jobs if j.strace]
    for j in plain:
        j.signal()
        time.sleep(0.1)
    for j in plain:
        j.finish()
    # strace jobs one at a time: attach, wait for it, signal, collect
    for j in traced:
        if j.error:
            j.finish()
            continue
        j.attach_strace()
        t_att = time.time()
        while not j.strace_attached() and time.time() - t_att < 20:
            time.sleep(0.1)
        time.sleep(1.0)
        j.signal()
        j.finish()
    st.join()
    if many_job and not many_job.error:
        log("many dump: %s" % many_job.out_txt)
    failed = [j for j in jobs if j.error]
    log("done; %d long jobs failed" % len(failed))


if __name__ == "__main__":
    main()
