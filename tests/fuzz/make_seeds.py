#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (run once; the files are
committed). Seeds are what real hosts give: the shipped config, command lines of the
launchers the naming rules know, /proc texts, rtnetlink datagrams built as the kernel
sends them, line-protocol scripts with hostile names. Crash inputs found by fuzzing are
added to the corpus by hand, named crash-<what>."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- config_toml ----
write("config_toml", "shipped", open(os.path.join(ROOT, "deploy/vmscope.toml")).read())
write("config_toml", "full", """interval = 0.5
count = 10
outputs = ["-", "tcp://127.0.0.1:8094", "http://h:8086/write?db=vm"]
log_level = "debug"
drop_path = false
attach = "clsact"
net_slots = 2048
[http]
username = "u"
password = "p"
[spool]
dir = "/tmp/s"
max_size = "64MiB"
[[override]]
tap = "vmmtap7"
name = "legacy"
bridge = "br0"
[[override]]
process = "my-vmm --id=db\\\\d+"
name = "db"
""")
write("config_toml", "errors", 'interval = "x"\nspool = { max_size = 12 }\nunknown = 1\n')
write("config_toml", "size", "512KiB")

# ---- command_line: arguments after the program name, NUL-separated ----
for name, args in {
    "run": ["run", "--interval", "0.5", "--count", "3", "--output", "-", "--output",
            "udp://127.0.0.1:8089", "--attach", "tcx", "--net-slots", "1024",
            "--spool-max-size", "1G", "--spool-dir", "/tmp/x", "--no-drop-path"],
    "top": ["--log-level", "debug", "top", "-b", "-n", "2", "-d", "0.5", "--sort", "mem",
            "--filter", "web", "--own"],
    "list": ["list", "--no-drop-path"],
    "check": ["check"],
    "version": ["--version"],
    "help": ["run", "--help"],
    "bad": ["run", "--interval", "-1", "--bogus"],
}.items():
    write("command_line", name, "\0".join(args))

# ---- naming: flags byte, cmdline, 0xff, cgroup, 0xff, tap ----
NAMING = {
    "solo5": ("solo5-hvt --mem=64 --net:service=vmmtap0 --block:storage=x -- "
              "/run/albatross/alice:web.img --name=alice:web", "", "vmmtap0"),
    "solo5_old": ("solo5-spt --mem=32 --net=tap100 dns.spt --name=ns1", "", ""),
    "qemu_libvirt": ("/usr/bin/qemu-system-x86_64 -name guest=web1,debug-threads=on -S "
                     "-netdev tap,fd=30,id=hostnet0",
                     "0::/machine.slice/machine-qemu\\x2d1\\x2dweb1.scope/libvirt/emulator\n",
                     "vnet0"),
    "qemu_commas": ("qemu-system-x86_64 -name guest=a,,b,debug-threads=on -m 256", "", ""),
    "firecracker": ("/firecracker --id 551e7604-e35c --start-time-us 1702391712", "", "tap0"),
    "firecracker_override": ("/usr/bin/firecracker --id abab", "", ""),
    "cloud_hypervisor": ("/usr/bin/cloud-hypervisor --api-socket path=/run/ch/web1.sock,fd=3",
                         "", ""),
    "kata": ("/opt/kata/bin/cloud-hypervisor --api-socket /run/vc/vm/3f2a9c/clh-api.sock", "", ""),
    "crosvm": ("/usr/bin/crosvm run -s /run/vm/penguin/crosvm.sock --cpus 2 vm_kernel", "", ""),
    "cgroup_v1": ("/usr/bin/some-vmm",
                  "12:cpuset:/machine.slice/machine-qemu\\x2d7\\x2ddb\\x2d01.scope\n"
                  "1:name=systemd:/machine.slice/machine-old.scope\n"
                  "0::/machine.slice/machine-new.scope\n", ""),
    "cgroup_legacy": ("/usr/bin/some-vmm", "3:cpu:/machine/web9.libvirt-qemu/vcpu0\n", ""),
    "override_qemu": ("qemu-system-x86_64 -m 1 -name guest=web42", "", "vmmtap0"),
}
for i, (name, (cmd, cgroup, tap)) in enumerate(NAMING.items()):
    data = bytes([i & 1]) + cmd.replace(" ", "\0").encode() + b"\xff" + cgroup.encode() + \
        b"\xff" + tap.encode()
    write("naming", name, data)

# ---- proc_text ----
write("proc_text", "stat", "4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194624 2210 0 0 0 "
      "120 30 0 0 20 0 5 0 123456 1234567890 12345 18446744073709551615 1 1 0 0 0 0 0 "
      "4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
write("proc_text", "stat_hostile_comm", "77 (a) b (c) d) R 1 2 3\n")
write("proc_text", "statm", "283526 4513 2841 599 0 86870 0\n")
write("proc_text", "fdinfo_tap", "pos:\t0\nflags:\t0104002\nmnt_id:\t24\nino:\t1042\n"
      "iff:\tvmmtap0\n")
write("proc_text", "fdinfo_plain", "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t6\n")

# ---- netlink: datagrams as the kernel builds them (nlmsghdr, payload, attributes) ----
RTM_NEWLINK, RTM_DELLINK, RTM_NEWSTATS, NLMSG_DONE, NLMSG_ERROR = 16, 17, 92, 3, 2
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 3, 4, 10, 18
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_TUN_TYPE = 1, 2, 2
IFLA_STATS_LINK_64 = 1
IFF_UP, IFF_LOWER_UP, IFF_TAP = 1, 1 << 16, 2


def align(b):
    return b + b"\0" * (-len(b) % 4)


def attr(t, payload):
    return align(struct.pack("HH", 4 + len(payload), t) + payload)


def msg(mtype, payload, seq=0, flags=2):
    return align(struct.pack("IHHII", 16 + len(payload), mtype, flags, seq, 0) + payload)


def link(index, name, kind=None, tap=False, master=0, mtu=1500, carrier=True, mtype=RTM_NEWLINK):
    ifi = struct.pack("BxHiII", 0, 1, index, IFF_UP | (IFF_LOWER_UP if carrier else 0), 0)
    attrs = attr(IFLA_IFNAME, name.encode() + b"\0") + attr(IFLA_MTU, struct.pack("I", mtu))
    if master:
        attrs += attr(IFLA_MASTER, struct.pack("I", master))
    if kind:
        info = attr(IFLA_INFO_KIND, kind.encode() + b"\0")
        if kind == "tun":
            info += attr(IFLA_INFO_DATA, attr(IFLA_TUN_TYPE, bytes([IFF_TAP if tap else 1])))
        attrs += attr(IFLA_LINKINFO | 0x8000, info)  # NLA_F_NESTED, as the kernel sets it
    return msg(mtype, ifi + attrs)


def stats(index, values):
    ism = struct.pack("BxxxiI", 0, index, 1 << (IFLA_STATS_LINK_64 - 1))
    return msg(RTM_NEWSTATS, ism + attr(IFLA_STATS_LINK_64, struct.pack("24Q", *values)))


done = msg(NLMSG_DONE, struct.pack("i", 0))
write("netlink", "link_dump", link(1, "lo", mtu=65536) + link(2, "eth0") +
      link(3, "br0", kind="bridge") + link(4, "vmmtap0", kind="tun", tap=True, master=3) +
      link(5, "tun0", kind="tun") + done)
write("netlink", "link_events", link(6, "vmmtap1", kind="tun", tap=True, carrier=False) +
      link(6, "vmmtap1", kind="tun", tap=True, mtype=RTM_DELLINK))
write("netlink", "stats_dump", stats(1, range(24)) + stats(4, [2**64 - 1] * 24) + done)
write("netlink", "error", msg(NLMSG_ERROR, struct.pack("i", -1) + msg(18, b"")))

# ---- line_protocol: scripts for line_protocol_fuzz.cpp ----


def s(text):
    b = text.encode()
    return bytes([len(b)]) + b


def line(measurement, items, ts=None, op=0):
    out = bytes([op]) + s(measurement) + bytes([len(items)])
    for it in items:
        out += it
    return out + (b"\1" + struct.pack("q", ts) if ts is not None else b"\0")


def tag(k, v): return b"\0" + s(k) + s(v)
def fint(k, v): return b"\1" + s(k) + struct.pack("q", v)
def fuint(k, v): return b"\2" + s(k) + struct.pack("Q", v)
def ffloat(k, v): return b"\3" + s(k) + struct.pack("d", v)
def ffixed(k, v, d): return b"\4" + s(k) + bytes([d]) + struct.pack("d", v)
def fstr(k, v): return b"\5" + s(k) + s(v)
def fbool(k, v): return b"\6" + s(k) + bytes([v])


LITERAL = b"\7"
write("line_protocol", "schema", line("vm_net", [tag("host", "h1"), tag("vm", "web1"),
                                                 tag("interface", "vmmtap0"),
                                                 fuint("rx_bytes", 123456789012),
                                                 fint("drops", -3), LITERAL], 1700000000000000000))
write("line_protocol", "hostile", line('we b,1="x\\', [tag("vm", 'a b,c=d"e\\f\\'),
                                                     tag("k\n", "v\r\n"),
                                                     fstr("s", 'q"u\\o\nte\\n'),
                                                     ffixed("utime", 1.25, 6),
                                                     ffloat("r", 1 / 3)], 5))
write("line_protocol", "backslash_runs", line("m\\\\ x", [tag("a\\,b", "\\\\=\\"),
                                                           fbool("\\=", 1), fint("\\", 1)]) +
      line("\\", [fint("t", 1)]))
write("line_protocol", "abandon_append", line("m", [fint("t", 1)], op=6) + b"\7" +
      line("n", [ffixed("v", 0.0078125, 6), ffixed("big", 1e300, 3),
                 ffloat("nan", float("nan"))], 0))
print("seeds written under", os.path.join(HERE, "corpus"))
