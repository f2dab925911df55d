#include "discover/naming.h"

#include <gtest/gtest.h>

#include <cctype>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace vmscope {
namespace {

// Splits a shell-like command line on spaces (the test command lines contain no quoting).
std::vector<std::string> words(const std::string& cmdline) {
  std::vector<std::string> out;
  std::istringstream in(cmdline);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

NamingOptions keep_path() {
  NamingOptions o;
  o.drop_path = false;
  return o;
}

struct NameCase {
  const char* description;
  std::vector<std::string> argv;
  std::string cgroup;
  NamingOptions opts;
  std::optional<std::string> name;  // std::nullopt: no rule names the process
  std::string launcher;
};

const std::string kAlbatrossUnikernelArgs =
    "--name=web --ipv4=10.0.0.2/24 --ipv4-gateway=10.0.0.1 --tls=true";
const std::string kHvtTender =
    "--mem=512 --net:service=vmmtap0 --net-mac:service=02:00:00:00:00:01 "
    "--block:storage=/var/lib/albatross/block/alice:web.storage --";

// A libvirt 9.x q35 domain, abbreviated only in the JSON blobs (which contain no spaces).
const std::string kLibvirtQemu =
    "/usr/bin/qemu-system-x86_64 -name guest=web1,debug-threads=on -S "
    "-object {\"qom-type\":\"secret\",\"id\":\"masterKey0\",\"format\":\"raw\",\"file\":\"/var/"
    "lib/libvirt/qemu/domain-1-web1/master-key.aes\"} "
    "-machine pc-q35-7.2,usb=off,vmport=off,dump-guest-core=off,memory-backend=pc.ram "
    "-accel kvm -cpu host,migratable=on -m size=2097152k "
    "-object {\"qom-type\":\"memory-backend-ram\",\"id\":\"pc.ram\",\"size\":2147483648} "
    "-overcommit mem-lock=off -smp 2,sockets=2,cores=1,threads=1 "
    "-uuid 5c2f3b2e-8a8e-4f5a-9d59-1e6f1a2b3c4d -no-user-config -nodefaults "
    "-chardev socket,id=charmonitor,fd=31,server=on,wait=off "
    "-mon chardev=charmonitor,id=monitor,mode=control -rtc base=utc,driftfix=slew "
    "-global kvm-pit.lost_tick_policy=delay -no-hpet -no-shutdown "
    "-global ICH9-LPC.disable_s3=1 -global ICH9-LPC.disable_s4=1 -boot strict=on "
    "-device {\"driver\":\"pcie-root-port\",\"port\":16,\"chassis\":1,\"id\":\"pci.1\","
    "\"bus\":\"pcie.0\",\"multifunction\":true,\"addr\":\"0x2\"} "
    "-blockdev {\"driver\":\"file\",\"filename\":\"/var/lib/libvirt/images/web1.qcow2\","
    "\"node-name\":\"libvirt-1-storage\",\"auto-read-only\":true,\"discard\":\"unmap\"} "
    "-netdev {\"type\":\"tap\",\"fd\":\"34\",\"vhost\":true,\"vhostfd\":\"36\",\"id\":"
    "\"hostnet0\"} "
    "-device {\"driver\":\"virtio-net-pci\",\"netdev\":\"hostnet0\",\"id\":\"net0\",\"mac\":"
    "\"52:54:00:6b:3c:58\",\"bus\":\"pci.1\",\"addr\":\"0x0\"} "
    "-chardev pty,id=charserial0 -audiodev {\"id\":\"audio1\",\"driver\":\"none\"} "
    "-vnc 127.0.0.1:0,audiodev=audio1 "
    "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny "
    "-msg timestamp=on";
const std::string kLibvirtCgroupV2 =
    "0::/machine.slice/machine-qemu\\x2d1\\x2dweb1.scope/libvirt/emulator\n";
// RHEL 7 style hybrid hierarchy.
const std::string kLibvirtCgroupV1 =
    "11:cpuset:/machine.slice/machine-qemu\\x2d12\\x2dmy\\x2dvm.scope/emulator\n"
    "10:memory:/machine.slice/machine-qemu\\x2d12\\x2dmy\\x2dvm.scope\n"
    "4:cpu,cpuacct:/machine.slice/machine-qemu\\x2d12\\x2dmy\\x2dvm.scope/emulator\n"
    "1:name=systemd:/machine.slice/machine-qemu\\x2d12\\x2dmy\\x2dvm.scope\n";

const NameCase kCases[] = {
    // ---- albatross solo5 ----
    {"albatross hvt with --name, default drop_path",
     words("solo5-hvt " + kHvtTender + " /run/albatross/alice:web.img " + kAlbatrossUnikernelArgs),
     "0::/system.slice/albatross-daemon.service\n",
     {},
     "web",
     "solo5-hvt"},
    {"albatross hvt tender copied into the db dir",
     words("/var/lib/albatross/solo5-hvt.3 " + kHvtTender + " /run/albatross/alice:web.img " +
           kAlbatrossUnikernelArgs),
     "",
     {},
     "web",
     "solo5-hvt"},
    {"albatross hvt absolute tender path",
     words("/usr/local/libexec/albatross/solo5-hvt " + kHvtTender +
           " /run/albatross/alice:web.img " + kAlbatrossUnikernelArgs),
     "",
     {},
     "web",
     "solo5-hvt"},
    {"albatross spt tender",
     words("/usr/bin/solo5-spt --mem=256 --net:service=vmmtap4 "
           "--net-mac:service=02:00:00:00:00:05 -- /run/albatross/bob:dns.img --name=dns "
           "--ipv4=10.0.0.5/24"),
     "",
     {},
     "dns",
     "solo5-spt"},
    {"--name given as two arguments",
     words("solo5-hvt --mem=64 --net:service=vmmtap1 -- /run/albatross/alice:web.img "
           "--name web --ipv4=10.0.0.2/24"),
     "",
     {},
     "web",
     "solo5-hvt"},
    {"no --name: last label of the image stem",
     words("solo5-hvt --mem=64 --net:service=vmmtap1 -- /run/albatross/alice:mail.img "
           "--ipv4=10.0.0.3/24"),
     "",
     {},
     "mail",
     "solo5-hvt"},
    {"--name before -- belongs to the tender, not the unikernel",
     words("solo5-hvt --mem=64 --name=bogus -- /run/albatross/alice:mail.img"),
     "",
     {},
     "mail",
     "solo5-hvt"},
    {"dotted label is kept whole",
     words("solo5-hvt --mem=512 --net:service=vmmtap2 -- "
           "/run/albatross/robur:retreat.mirageos.org.img --name=retreat.mirageos.org"),
     "",
     {},
     "retreat.mirageos.org",
     "solo5-hvt"},
    {"drop_path=false: full path from the image stem",
     words("solo5-hvt " + kHvtTender + " /run/albatross/alice:web.img " + kAlbatrossUnikernelArgs),
     "", keep_path(), "alice:web", "solo5-hvt"},
    {"drop_path=false: nested path",
     words("solo5-hvt --mem=64 -- /run/albatross/org:team:api.img --name=api"), "", keep_path(),
     "org:team:api", "solo5-hvt"},
    {"drop_path=false: root-level VM gets a leading ':'",
     words("solo5-hvt --mem=64 --net:service=vmmtap0 -- /run/albatross/web.img --name=web"), "",
     keep_path(), ":web", "solo5-hvt"},
    {"drop_path=true: root-level VM",
     words("solo5-hvt --mem=64 -- /run/albatross/web.img"),
     "",
     {},
     "web",
     "solo5-hvt"},
    {"drop_path=false without an image falls back to --name",
     words("solo5-hvt --mem=64 -- --name=alice:web"), "", keep_path(), "alice:web", "solo5-hvt"},
    {"drop_path=true without an image uses the last label of --name",
     words("solo5-hvt --mem=64 -- --name=alice:web"),
     "",
     {},
     "web",
     "solo5-hvt"},
    {"plain solo5 without -- separator",
     words("solo5-hvt --mem=32 --net=tap100 dns.hvt --name=ns1"),
     "",
     {},
     "ns1",
     "solo5-hvt"},
    {"plain solo5 image stem",
     words("solo5-spt --mem=32 -- /opt/unikernels/hello.spt"),
     "",
     {},
     "hello",
     "solo5-spt"},
    {"solo5 tender with no unikernel", words("solo5-hvt --version"), "", {}, std::nullopt, ""},
    {"empty --name falls back to the image",
     words("solo5-hvt --mem=64 -- /run/albatross/alice:web.img --name="),
     "",
     {},
     "web",
     "solo5-hvt"},

    // ---- qemu ----
    {"libvirt qemu command line", words(kLibvirtQemu), kLibvirtCgroupV2, {}, "web1", "qemu"},
    {"RHEL 7 qemu-kvm from libvirt",
     words("/usr/libexec/qemu-kvm -name guest=db01,debug-threads=on -S -machine "
           "pc-i440fx-rhel7.6.0,accel=kvm,usb=off,dump-guest-core=off -cpu Haswell-noTSX -m 4096 "
           "-realtime mlock=off -smp 2,sockets=2,cores=1,threads=1 "
           "-uuid 0d1f0c4e-3c7a-4e8e-9b1c-1c2d3e4f5a6b -no-user-config -nodefaults "
           "-chardev socket,id=charmonitor,path=/var/lib/libvirt/qemu/domain-12-db01/monitor.sock,"
           "server,nowait -mon chardev=charmonitor,id=monitor,mode=control"),
     kLibvirtCgroupV1,
     {},
     "db01",
     "qemu"},
    {"plain qemu -name",
     words("qemu-system-x86_64 -enable-kvm -m 1024 -smp 2 -name web1 "
           "-drive file=/srv/vm/web1.qcow2,if=virtio "
           "-netdev tap,id=n0,ifname=tap0,script=no,downscript=no "
           "-device virtio-net-pci,netdev=n0 -nographic"),
     "0::/user.slice/user-1000.slice/session-3.scope\n",
     {},
     "web1",
     "qemu"},
    {"qemu -name with process=",
     words("/usr/bin/qemu-system-aarch64 -M virt -name web2,process=qemu-web2 -m 512"),
     "",
     {},
     "web2",
     "qemu"},
    {"qemu comma escaping in guest=",
     words("qemu-system-x86_64 -name guest=a,,b,debug-threads=on -m 256"),
     "",
     {},
     "a,b",
     "qemu"},
    {"qemu comma escaping in implied key",
     words("qemu-system-x86_64 -name lab,,vm1 -m 256"),
     "",
     {},
     "lab,vm1",
     "qemu"},
    {"qemu --name spelling", words("qemu-system-riscv64 --name rv1 -m 256"), "", {}, "rv1", "qemu"},
    {"debian kvm wrapper",
     words("kvm -m 512 -name test-vm -hda /srv/test.img"),
     "",
     {},
     "test-vm",
     "qemu"},
    {"qemu without -name and no cgroup",
     words("qemu-system-x86_64 -m 256 -hda disk.img"),
     "",
     {},
     std::nullopt,
     ""},
    {"qemu without -name named by libvirt cgroup",
     words("/usr/bin/qemu-system-x86_64 -S -m 256 -hda /var/lib/libvirt/images/web1.qcow2"),
     kLibvirtCgroupV2,
     {},
     "web1",
     "libvirt"},

    // ---- firecracker ----
    {"firecracker started by jailer",
     words("/firecracker --id 551e7604-e35c-42b3-b825-416853441234 --start-time-us 1702391712 "
           "--start-time-cpu-us 2514 --parent-cpu-time-us 1902 --api-sock /run/firecracker.socket "
           "--config-file vm_config.json"),
     "",
     {},
     "551e7604-e35c-42b3-b825-416853441234",
     "firecracker"},
    {"firecracker --id=",
     words("/usr/local/bin/firecracker-v1.7.0-x86_64 --api-sock /tmp/fc-web1.sock --id=web1 "
           "--level Info"),
     "",
     {},
     "web1",
     "firecracker"},
    {"firecracker without --id",
     words("firecracker --api-sock /tmp/firecracker.socket"),
     "",
     {},
     std::nullopt,
     ""},

    // ---- cloud-hypervisor ----
    {"cloud-hypervisor api socket path=",
     words("/usr/bin/cloud-hypervisor --api-socket path=/run/ch/web1.sock "
           "--kernel /srv/ch/hypervisor-fw --disk path=/srv/ch/web1.raw --cpus boot=4 "
           "--memory size=1024M --net tap=ichtap0,mac=12:34:56:78:90:ab --serial tty "
           "--console off"),
     "",
     {},
     "web1",
     "cloud-hypervisor"},
    {"cloud-hypervisor legacy bare socket path",
     words("cloud-hypervisor --kernel vmlinux --api-socket /var/run/ch/db2.sock --cpus boot=1"),
     "",
     {},
     "db2",
     "cloud-hypervisor"},
    {"cloud-hypervisor old libvirt <name>-socket",
     words("/usr/bin/cloud-hypervisor --api-socket /run/libvirt/ch/web3-socket"),
     "",
     {},
     "web3",
     "cloud-hypervisor"},
    {"cloud-hypervisor kata per-sandbox dir",
     words("/opt/kata/bin/cloud-hypervisor --api-socket /run/vc/vm/3f2a9c/clh-api.sock"),
     "",
     {},
     "3f2a9c",
     "cloud-hypervisor"},
    {"cloud-hypervisor default socket in /tmp names nothing",
     words("cloud-hypervisor --api-socket /tmp/cloud-hypervisor.sock --kernel vmlinux"),
     "",
     {},
     std::nullopt,
     ""},
    {"cloud-hypervisor from libvirt passes fd=, cgroup names it",
     words("/usr/bin/cloud-hypervisor --api-socket fd=27"),
     "0::/machine.slice/machine-ch\\x2d3\\x2dweb4.scope\n",
     {},
     "web4",
     "libvirt"},

    // ---- crosvm ----
    {"crosvm --name",
     words("/usr/bin/crosvm run --name web1 --cpus 2 --mem 1024 --rwdisk /srv/vm/rootfs.img "
           "--net tap-name=crosvm_tap -s /run/crosvm/other.sock -p root=/dev/vda /srv/vm/bzImage"),
     "",
     {},
     "web1",
     "crosvm"},
    {"crosvm control socket named after the VM",
     words("crosvm --log-level=info run --cpus 4 --mem 4096 --socket /run/crosvm/web2.sock "
           "-b /srv/vm/rootfs.ext4,root vmlinux"),
     "",
     {},
     "web2",
     "crosvm"},
    {"crosvm default socket name in a per-VM dir",
     words("/usr/bin/crosvm run -s /run/vm/penguin/crosvm.sock --cpus 2 vm_kernel"),
     "",
     {},
     "penguin",
     "crosvm"},
    {"crosvm without name or socket",
     words("crosvm run --disable-sandbox --cpus 1 --mem 512 --rwroot rootfs.ext4 Image"),
     "",
     {},
     std::nullopt,
     ""},

    // ---- cgroup only ----
    {"libvirt cgroup v2 only",
     words("/usr/bin/some-vmm --foo"),
     "0::/machine.slice/machine-qemu\\x2d1\\x2dweb1.scope/libvirt/emulator\n",
     {},
     "web1",
     "libvirt"},
    {"libvirt cgroup v1 with dashes in the name",
     words("/usr/bin/some-vmm"),
     kLibvirtCgroupV1,
     {},
     "my-vm",
     "libvirt"},
    {"legacy libvirt cgroup without systemd",
     words("/usr/bin/some-vmm"),
     "4:cpu,cpuacct:/machine/web5.libvirt-qemu/emulator\n",
     {},
     "web5",
     "libvirt"},
    {"systemd-nspawn machine",
     words("/sbin/init"),
     "0::/machine.slice/machine-debian\\x2dbookworm.scope/payload\n",
     {},
     "debian-bookworm",
     "machined"},
    {"v2 line wins over v1 lines",
     words("/usr/bin/thing"),
     "1:name=systemd:/machine.slice/machine-old.scope\n"
     "0::/machine.slice/machine-new.scope\n",
     {},
     "new",
     "machined"},

    // ---- nothing ----
    {"bash in a user session",
     words("-bash"),
     "0::/user.slice/user-1000.slice/session-2.scope\n",
     {},
     std::nullopt,
     ""},
    {"bash by path", words("/usr/bin/bash -c sleep 100"), "", {}, std::nullopt, ""},
    {"kernel thread (empty cmdline)", {}, "0::/\n", {}, std::nullopt, ""},
    {"machine.slice itself is no machine",
     words("/usr/sbin/libvirtd --timeout 120"),
     "0::/machine.slice\n",
     {},
     std::nullopt,
     ""},
};

class NamingCaseTest : public testing::TestWithParam<NameCase> {};

TEST_P(NamingCaseTest, NamesProcess) {
  const NameCase& c = GetParam();
  ProcessInfo proc;
  proc.pid = 4242;
  proc.argv = c.argv;
  proc.cgroup = c.cgroup;
  const auto id = name_vm(proc, c.opts);
  if (!c.name) {
    EXPECT_FALSE(id.has_value()) << "named it " << id->name << " (" << id->launcher << ")";
    return;
  }
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, *c.name);
  EXPECT_EQ(id->launcher, c.launcher);
}

std::string case_name(const testing::TestParamInfo<NameCase>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (const char* p = info.param.description; *p != '\0'; ++p) {
    name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Launchers, NamingCaseTest, testing::ValuesIn(kCases), case_name);

TEST(NamingTapNets, MultipleNetDevices) {
  ProcessInfo proc;
  proc.argv = words(
      "solo5-hvt --mem=512 --net:service=vmmtap0 --net-mac:service=02:00:00:00:00:01 "
      "--net:management=vmmtap3 --net-mac:management=02:00:00:00:00:02 "
      "--block:storage=/var/lib/albatross/block/alice:fw -- /run/albatross/alice:fw.img "
      "--name=fw --net:bogus=vmmtap9");
  const auto id = name_vm(proc, {});
  ASSERT_TRUE(id.has_value());
  const std::map<std::string, std::string> want = {{"vmmtap0", "service"},
                                                   {"vmmtap3", "management"}};
  EXPECT_EQ(id->tap_nets, want);
}

TEST(NamingTapNets, OldStyleNetIsService) {
  ProcessInfo proc;
  proc.argv = words("solo5-hvt --mem=64 --net=tap0 -- /srv/unikernels/dns.hvt");
  const auto id = name_vm(proc, {});
  ASSERT_TRUE(id.has_value());
  const std::map<std::string, std::string> want = {{"tap0", "service"}};
  EXPECT_EQ(id->tap_nets, want);
}

TEST(NamingTapNets, OnlySolo5FillsTapNets) {
  ProcessInfo proc;
  proc.argv = words("qemu-system-x86_64 -name web1 -netdev tap,id=n0,ifname=tap0");
  const auto id = name_vm(proc, {});
  ASSERT_TRUE(id.has_value());
  EXPECT_TRUE(id->tap_nets.empty());
}

std::vector<NameOverride> sample_overrides() {
  return {
      {"vmmtap7", "", "legacy-router", "uplink"},
      {"", R"(qemu-system-\S+ .*-hda /srv/lab/(\w+)\.img)", "lab-vm", ""},
      {"", "solo5-hvt .*alice:web", "alice-web", "public"},
      {"tap9", "", "", "ignored"},  // no name: never used
  };
}

TEST(NamingOverride, ByTap) {
  const auto id = match_override(sample_overrides(), "vmmtap7", nullptr);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "legacy-router");
  EXPECT_EQ(id->launcher, "override");
  const std::map<std::string, std::string> want = {{"vmmtap7", "uplink"}};
  EXPECT_EQ(id->tap_nets, want);
}

TEST(NamingOverride, ByProcessRegex) {
  ProcessInfo proc;
  proc.argv = words("qemu-system-x86_64 -m 512 -hda /srv/lab/router.img -nographic");
  const auto id = match_override(sample_overrides(), "tap0", &proc);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "lab-vm");
  EXPECT_EQ(id->launcher, "override");
  EXPECT_TRUE(id->tap_nets.empty());  // that entry has no bridge
}

TEST(NamingOverride, RegexMatchPutsBridgeOnTheGivenTap) {
  ProcessInfo proc;
  proc.argv = words("solo5-hvt --mem=64 --net:service=vmmtap0 -- /run/albatross/alice:web.img");
  const auto id = match_override(sample_overrides(), "vmmtap0", &proc);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "alice-web");
  const std::map<std::string, std::string> want = {{"vmmtap0", "public"}};
  EXPECT_EQ(id->tap_nets, want);
}

TEST(NamingOverride, FirstMatchWins) {
  ProcessInfo proc;
  proc.argv = words("qemu-system-x86_64 -hda /srv/lab/x.img");
  // vmmtap7 matches the first entry by tap even though the process matches the second.
  const auto id = match_override(sample_overrides(), "vmmtap7", &proc);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->name, "legacy-router");
}

TEST(NamingOverride, NoMatch) {
  ProcessInfo proc;
  proc.argv = words("/usr/bin/bash");
  EXPECT_FALSE(match_override(sample_overrides(), "vmmtap1", &proc).has_value());
  EXPECT_FALSE(match_override(sample_overrides(), "vmmtap1", nullptr).has_value());
  EXPECT_FALSE(match_override({}, "vmmtap7", &proc).has_value());
}

TEST(NamingOverride, EmptyTapNeverMatchesTaplessEntry) {
  EXPECT_FALSE(match_override(sample_overrides(), "", nullptr).has_value());
}

TEST(NamingOverride, EntryWithoutNameIsSkipped) {
  EXPECT_FALSE(match_override(sample_overrides(), "tap9", nullptr).has_value());
}

TEST(NamingOverride, InvalidRegexNeverMatches) {
  ProcessInfo proc;
  proc.argv = words("qemu-system-x86_64 -name web1");
  const std::vector<NameOverride> overrides = {{"", "qemu(", "broken", ""}};
  EXPECT_FALSE(match_override(overrides, "tap0", &proc).has_value());
}

TEST(NamingValidate, Overrides) {
  EXPECT_EQ(validate_override({"vmmtap7", "", "router", ""}), "");
  EXPECT_EQ(validate_override({"", "qemu-system.*web", "web", "br0"}), "");
  EXPECT_NE(validate_override({"vmmtap7", "", "", ""}), "");
  EXPECT_NE(validate_override({"", "", "web", ""}), "");
  EXPECT_NE(validate_override({"a-very-long-tap-name", "", "web", ""}), "");
  const std::string err = validate_override({"", "qemu(", "web", ""});
  EXPECT_NE(err.find("qemu("), std::string::npos) << err;
}

TEST(NamingSplitArgv, Cases) {
  using V = std::vector<std::string>;
  using namespace std::string_view_literals;
  EXPECT_EQ(split_argv("qemu\0-name\0guest=a\0"sv), (V{"qemu", "-name", "guest=a"}));
  EXPECT_EQ(split_argv("qemu\0-name\0gue"sv), (V{"qemu", "-name", "gue"}));  // truncated
  EXPECT_EQ(split_argv("a\0\0b\0"sv), (V{"a", "", "b"}));                    // empty argument
  EXPECT_EQ(split_argv("\0"sv), (V{""}));
  EXPECT_EQ(split_argv(""sv), V{});  // a kernel thread's cmdline
}

TEST(NamingSystemdUnescape, Cases) {
  EXPECT_EQ(systemd_unescape("machine-qemu\\x2d1\\x2dweb1.scope"), "machine-qemu-1-web1.scope");
  EXPECT_EQ(systemd_unescape("machine-qemu\\x2d12\\x2dmy\\x2dvm.scope"),
            "machine-qemu-12-my-vm.scope");
  EXPECT_EQ(systemd_unescape("a\\x2Db"), "a-b");  // upper-case hex
  EXPECT_EQ(systemd_unescape("dev-disk-by\\x2dlabel-root\\x2fboot"), "dev-disk-by-label-root/boot");
  EXPECT_EQ(systemd_unescape("plain.service"), "plain.service");
  EXPECT_EQ(systemd_unescape(""), "");
  EXPECT_EQ(systemd_unescape("bad\\xZZ"), "bad\\xZZ");    // not hex: literal
  EXPECT_EQ(systemd_unescape("short\\x2"), "short\\x2");  // truncated: literal
  EXPECT_EQ(systemd_unescape("end\\"), "end\\");
  EXPECT_EQ(systemd_unescape("\\x5cx2d"), "\\x2d");  // decoded output is not decoded again
}

}  // namespace
}  // namespace vmscope
