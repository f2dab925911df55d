#!/usr/bin/env python3
"""The parts of bench/soak.sh that are easier in Python (issue 11 item 3, not CI).

  soak.py receive PORT FILE      a Telegraf-like TCP line receiver on 127.0.0.1:PORT: keeps the
                                 `vm_event` and `vmscope` lines in FILE (the rest is only
                                 counted, in FILE.count), accepts reconnections.
  soak.py load ...               VM starts and stops and tap flapping (run inside the namespace).
  soak.py check ...              compares what the load did with what the agent wrote.

Every VM the load starts is named PREFIX<kind><n> (unique), so that the VMs of other
processes on the host, which the agent also sees, are told apart.
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time


# ---- receive ----

def receive(port, path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    out = open(path, "a", buffering=1)
    lock = threading.Lock()
    total = [0]

    def serve(conn):
        rest = b""
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            rest += data
            *lines, rest = rest.split(b"\n")
            keep = [l.decode() for l in lines if l.startswith((b"vm_event,", b"vmscope,", b"vmscope "))]
            with lock:
                total[0] += len(lines)
                if keep:
                    out.write("\n".join(keep) + "\n")
                with open(path + ".count", "w") as c:
                    c.write(f"{total[0]}\n")
        conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


# ---- load ----

def ip(*args):
    subprocess.run(["ip", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Load:
    """Starts `rate` VMs a minute, each living 3-30 s, of four kinds in turn:
    s  solo5-hvt (albatross' argv) holding a persistent tap of the pool,
    t  solo5-hvt holding a tap of its own (created when it opens it, gone when it exits),
    q  qemu holding a pool tap (-netdev tap,ifname=...),
    b  qemu without a tap (busy_vm), every other one exiting by itself with a status;
    and stops them with SIGKILL or SIGTERM. Meanwhile pool taps go down and up, and the
    flap taps are deleted and re-created."""

    def __init__(self, a):
        self.a = a
        self.log = open(a.log, "a", buffering=1)
        self.free = list(a.pool)
        random.shuffle(self.free)
        self.live = {}  # pid -> (name, Popen, deadline, tap or None, how)
        self.n = 0
        self.stop_flap = threading.Event()
        self.rng = random.Random(a.seed)

    def note(self, *words):
        self.log.write(" ".join(str(w) for w in (f"{time.time():.3f}",) + words) + "\n")

    def start_one(self):
        kind = "stqb"[self.n % 4]
        name = f"{self.a.prefix}{kind}{self.n}"
        self.n += 1
        tap = None
        env = dict(os.environ)
        if kind in "sq":
            if not self.free:
                kind, name = "b", f"{self.a.prefix}b{self.n - 1}"
            else:
                tap = self.free.pop()
        if kind == "s":
            argv = ["solo5-hvt", f"--net:service={tap}", "--", f"/run/albatross/soak:{name}.img"]
            exe = self.a.tap_holder
        elif kind == "t":
            argv = ["solo5-hvt", f"--net:service=skt{self.n % 100000}", "--",
                    f"/run/albatross/soak:{name}.img"]
            exe = self.a.tap_holder
        elif kind == "q":
            argv = ["qemu-system-x86_64", "-name", f"guest={name},debug-threads=on",
                    "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no"]
            exe = self.a.tap_holder
        else:
            argv = ["qemu-system-x86_64", "-name", f"guest={name}", "-m", "64"]
            exe = self.a.busy_vm
            env.update(BUSY_MB="4", BUSY_THREADS="0")
        life = self.rng.uniform(3, 30)
        how = self.rng.choice(["KILL", "KILL", "TERM"])
        if kind == "b" and self.n % 8 == 0:
            # Exits by itself with a status, like a guest powering off.
            env.update(BUSY_EXIT_MS=str(int(life * 1000)), BUSY_EXIT_CODE=str(self.n % 7))
            how = "exit"
        p = subprocess.Popen(argv, executable=exe, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.live[p.pid] = (name, p, time.time() + life + (5 if how == "exit" else 0), tap, how)
        self.note("start", name, p.pid, kind, tap or "-")

    def reap(self, force=False):
        now = time.time()
        for pid, (name, p, deadline, tap, how) in list(self.live.items()):
            status = p.poll()
            if status is None and (force or now >= deadline):
                p.send_signal(signal.SIGTERM if how == "TERM" and not force else signal.SIGKILL)
                status = p.wait()
            if status is None:
                continue
            del self.live[pid]
            if tap:
                self.free.append(tap)
            self.note("stop", name, pid, how, status)

    def flap(self):
        """Every 2 s a pool tap goes down and comes up again; every 5 s a flap tap is
        deleted and re-created on the bridge."""
        k = 0
        while not self.stop_flap.wait(2):
            tap = self.rng.choice(self.a.pool)
            ip("link", "set", tap, "down")
            time.sleep(0.3)
            ip("link", "set", tap, "up")
            k += 1
            if k % 3 == 0:
                tap = self.rng.choice(self.a.flap)
                ip("link", "del", tap)
                time.sleep(0.3)
                ip("tuntap", "add", "mode", "tap", "name", tap)
                ip("link", "set", tap, "master", self.a.bridge, "up")
            self.note("flap", tap)

    def run(self):
        flapper = threading.Thread(target=self.flap)
        flapper.start()
        period = 60.0 / self.a.rate
        end = time.time() + self.a.minutes * 60
        next_start = time.time()
        while time.time() < end:
            if time.time() >= next_start:
                self.start_one()
                next_start += period
            self.reap()
            time.sleep(0.05)
        self.stop_flap.set()
        flapper.join()
        self.reap(force=True)
        for tap in self.a.flap + self.a.pool:  # everything back as before the first start
            ip("tuntap", "add", "mode", "tap", "name", tap)
            ip("link", "set", tap, "master", self.a.bridge, "up")
        self.note("done", self.n)


# ---- maps ----

def maps(pid, out):
    """Entries of the agent's hash maps and used slots of if_slot, read by the kernel's map
    ids the agent's fds hold (bpftool), as JSON; the `tracked` keys (tgids) go along."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            for line in open(f"/proc/{pid}/fdinfo/{fd}"):
                if line.startswith("map_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            pass
    result, tracked = {}, []
    for i in sorted(ids):
        info = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", str(i)],
                                         capture_output=True, text=True).stdout or "{}")
        name = info.get("name")
        if name not in ("tracked", "if_slot", "if_slot_far", "service_pending"):
            continue
        dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "id", str(i)],
                                         capture_output=True, text=True).stdout or "[]")
        def num(hexbytes):
            return int.from_bytes(bytes(int(b, 16) for b in hexbytes), "little")
        if name == "if_slot":  # an array: the slots in use are the non-zero values
            result[name] = sum(1 for e in dump if num(e["value"]) != 0)
        elif name == "tracked":
            tracked = sorted(num(e["key"]) for e in dump)
            result[name] = len(tracked)
        else:
            result[name] = len(dump)
    json.dump({"maps": result, "tracked": tracked}, open(out, "w"))


# ---- check ----

def lp_point(line):
    """(measurement, tags, fields, timestamp) of a line without escapes (our names)."""
    # Field values may contain spaces and commas (text="..."): split off the timestamp
    # first; the fields are only read from `vmscope` lines, which have no strings.
    head_and_fields, ts = line.rsplit(" ", 1)
    head, fields = head_and_fields.split(" ", 1)
    m, *tags = head.split(",")
    tagd = dict(t.split("=", 1) for t in tags)
    fieldd = {}
    for f in fields.split(","):
        if "=" in f:
            k, v = f.split("=", 1)
            fieldd[k] = v
    return m, tagd, fieldd, int(ts)


def check(a):
    ok = True

    def verdict(name, passed, text):
        nonlocal ok
        ok &= passed
        print(f"soak: {'PASS' if passed else 'FAIL'} {name}: {text}")

    # What the load did.
    started, stopped, flaps = {}, {}, 0
    mine_pids = set()
    t_first = t_last = None
    for line in open(a.log):
        w = line.split()
        if w[1] == "start":
            started[w[2]] = w
            mine_pids.add(int(w[3]))
            t_first = t_first or float(w[0])
        elif w[1] == "stop":
            stopped[w[2]] = w
            t_last = float(w[0])
        elif w[1] == "flap":
            flaps += 1
    # What the agent wrote to the always-up output.
    events = {"start": {}, "exit": {}}
    gone = 0
    wrong = []  # events whose pid, exit code or signal differ from what the load saw
    ticks = []
    for line in open(a.lines):
        line = line.rstrip("\n")
        if not line:
            continue
        m, tags, fields, ts = lp_point(line)
        if m == "vm_event" and tags.get("vm", "").startswith(a.prefix):
            d = events[tags["event"]]
            d[tags["vm"]] = d.get(tags["vm"], 0) + 1
            if "exit not observed" in line:
                gone += 1
            w = started.get(tags["vm"])
            pid_ok = w is not None and fields.get("pid") == w[3] + "i"
            if tags["event"] == "exit" and tags["vm"] in stopped and "exit_code" in fields:
                status = int(stopped[tags["vm"]][5])  # Popen: -N = killed by signal N
                want = ("0i", f"{-status}i") if status < 0 else (f"{status}i", "0i")
                pid_ok &= (fields["exit_code"], fields["signal"]) == want
            if not pid_ok:
                wrong.append(line[:160])
        elif m == "vmscope":
            ticks.append((ts, fields))

    minutes = (t_last - t_first) / 60 if t_first and t_last else 0
    print(f"soak: load: {len(started)} VMs started, {len(stopped)} stopped over {minutes:.1f} min"
          f" ({len(started) / max(minutes, 1e-9):.0f}/min), {flaps} tap flaps")
    for kind, label in (("start", "start"), ("exit", "exit")):
        counts = events[kind]
        missing = [n for n in started if counts.get(n, 0) == 0]
        dup = [n for n, c in counts.items() if c > 1]
        unknown = [n for n in counts if n not in started]
        verdict(f"{label} events exactly once",
                not missing and not dup and not unknown and len(stopped) == len(started),
                f"{len(started)} VMs, {sum(counts.values())} {label} events, "
                f"missing {len(missing)} {missing[:5]}, duplicated {len(dup)} {dup[:5]}, "
                f"unknown {len(unknown)} {unknown[:5]}"
                + (f"; {gone} exits not observed (found gone by a sample)" if kind == "exit" else ""))
    verdict("events carry the pid, exit code and signal the load saw", not wrong,
            f"{len(wrong)} differ" + "".join("\n    " + l for l in wrong[:5]))

    # Ticks: consecutive `vmscope` points at most two intervals apart = none late by more
    # than one interval.
    interval_ns = int(a.interval * 1e9)
    gaps = [b[0] - a_[0] for a_, b in zip(ticks, ticks[1:])]
    late = [g for g in gaps if g > 2 * interval_ns]
    span = (ticks[-1][0] - ticks[0][0]) / 1e9 if len(ticks) > 1 else 0
    tick_ns = sorted(int(f["tick_ns"].rstrip("i")) for _, f in ticks if "tick_ns" in f)
    p99 = tick_ns[int(len(tick_ns) * 0.99)] if tick_ns else 0
    verdict("no tick late by more than one interval", bool(ticks) and not late,
            f"{len(ticks)} ticks over {span:.0f} s (expected {int(span / a.interval) + 1}), "
            f"largest gap {max(gaps, default=0) / 1e6:.0f} ms, {len(late)} gaps > "
            f"{2 * a.interval:g} s; tick_ns median {tick_ns[len(tick_ns) // 2] / 1e6 if tick_ns else 0:.2f} ms, "
            f"p99 {p99 / 1e6:.2f} ms, max {max(tick_ns, default=0) / 1e6:.2f} ms")
    last = ticks[-1][1] if ticks else {}
    lost = last.get("proc_events_lost", "?").rstrip("i")
    dropped = last.get("lines_dropped", "?").rstrip("i")
    print(f"soak: last self-metrics: proc_events_lost {lost}, lines_dropped {dropped}, "
          f"spool_dropped_batches {last.get('spool_dropped_batches', '?').rstrip('i')}")

    # RSS and fds: samples "unix_time rss_kib fds".
    samples = [tuple(map(int, l.split())) for l in open(a.samples) if len(l.split()) == 3]
    warm = [s for s in samples if s[0] >= a.warm_until and s[0] <= a.load_end]
    if warm:
        first, lastr = warm[0][1], warm[-1][1]
        top = max(s[1] for s in warm)
        low = min(s[1] for s in warm)
        verdict("RSS flat within 2 MiB after warm-up",
                top - first <= 2048 and abs(lastr - first) <= 2048,
                f"{len(warm)} samples after warm-up: first {first} KiB, last {lastr} KiB, "
                f"min {low} KiB, max {top} KiB (max - first {top - first} KiB, "
                f"last - first {lastr - first} KiB); peak before warm-up "
                f"{max((s[1] for s in samples if s[0] < a.warm_until), default=0)} KiB")
    else:
        verdict("RSS flat within 2 MiB after warm-up", False, "no samples after warm-up")
    # A running VM holds fds of the agent (tcx links of its own taps, ...): the count is
    # compared with no VM running, before the first start and after the last stop.
    fd_warm = [s[2] for s in warm]
    verdict("open fds constant", a.fds_before == a.fds_after,
            f"{a.fds_before} before the first start, {a.fds_after} after the last stop; "
            f"{min(fd_warm, default=0)}..{max(fd_warm, default=0)} after warm-up while VMs ran "
            f"and InfluxDB went down and up ({len(fd_warm)} samples)")

    # BPF maps: "name entries" before the first start and after the last stop.
    # `tracked` holds every VM process of the host, also other people's (the machine is
    # shared): its baseline is "none of ours left"; the network maps are this namespace's.
    mb, ma = json.load(open(a.maps_before)), json.load(open(a.maps_after))
    before, after = mb["maps"], ma["maps"]
    mine = [t for t in ma["tracked"] if t in mine_pids]
    net = [k for k in before if k != "tracked"]
    same = all(before[k] == after.get(k) for k in net) and len(net) == 3
    # The agent's own count of the same (its `vmscope` line): the first after the namespace
    # was set up against the last.
    for k in ("net_slots", "taps", "net_far_slots", "service_pending"):
        b, e = ticks[a.self_base][1].get(k, "?"), ticks[-1][1].get(k, "?")
        before[f"self {k}"], after[f"self {k}"] = b.rstrip("i"), e.rstrip("i")
        same &= b == e
    verdict("BPF map entries back at baseline", same and not mine,
            "before the first start " + ", ".join(f"{k} {v}" for k, v in sorted(before.items()))
            + "; after the last stop " + ", ".join(f"{k} {v}" for k, v in sorted(after.items()))
            + f"; tracked entries of soak VMs after the last stop: {len(mine)}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receive")
    r.add_argument("port", type=int)
    r.add_argument("file")
    l = sub.add_parser("load")
    l.add_argument("--minutes", type=float, required=True)
    l.add_argument("--rate", type=float, default=100)
    l.add_argument("--prefix", required=True)
    l.add_argument("--pool", nargs="+", required=True)
    l.add_argument("--flap", nargs="+", required=True)
    l.add_argument("--bridge", required=True)
    l.add_argument("--tap-holder", required=True)
    l.add_argument("--busy-vm", required=True)
    l.add_argument("--log", required=True)
    l.add_argument("--seed", type=int, default=11)
    c = sub.add_parser("check")
    c.add_argument("--prefix", required=True)
    c.add_argument("--log", required=True)
    c.add_argument("--lines", required=True)
    c.add_argument("--samples", required=True)
    c.add_argument("--interval", type=float, default=1.0)
    c.add_argument("--warm-until", type=int, required=True)
    c.add_argument("--load-end", type=int, required=True)
    c.add_argument("--fds-before", type=int, required=True)
    c.add_argument("--fds-after", type=int, required=True)
    c.add_argument("--maps-before", required=True)
    c.add_argument("--maps-after", required=True)
    c.add_argument("--self-base", type=int, required=True,
                   help="index of the `vmscope` line taken as the self-metrics baseline")
    m = sub.add_parser("maps")
    m.add_argument("pid", type=int)
    m.add_argument("out")
    a = p.parse_args()
    if a.cmd == "receive":
        receive(a.port, a.file)
    elif a.cmd == "maps":
        maps(a.pid, a.out)
    elif a.cmd == "load":
        Load(a).run()
    else:
        sys.exit(check(a))


if __name__ == "__main__":
    main()
