// resource_usage and kinfo_mem keep albatross' exact names, order and units; vm_cpu and
// vm_io follow; vm_event lines carry what a Grafana annotation needs.
#include "output/proc_lines.h"

#include <gtest/gtest.h>

#include "output/line_protocol.h"

namespace vmscope {
namespace {

TEST(ProcLines, ResourceUsageAndKinfoMemAreAlbatrossSchema) {
  VmResources v;
  v.vm = "web";
  v.counters.utime_ns = 1'250'000'000;  // 1.25 s
  v.counters.stime_ns = 500'001'000;    // 0.500001 s
  v.counters.min_flt = 1000;
  v.counters.maj_flt = 3;
  v.counters.nvcsw = 7;
  v.counters.nivcsw = 9;
  v.counters.run_delay_ns = 2'500'000'001;  // 2.500000 s (6 decimals)
  v.counters.run_count = 77;
  v.counters.read_bytes = 1025;  // 2 blocks of 512 (rounded down, as getrusage)
  v.counters.write_bytes = 8192;
  v.counters.cancelled_write_bytes = 4096;  // outblock: (8192 - 4096) / 512 = 8
  v.counters.rchar = 11;
  v.counters.wchar = 12;
  v.counters.syscr = 13;
  v.counters.syscw = 14;
  v.rss_pages = 2048;
  v.vsize_bytes = 1 << 30;
  v.text_pages = 10;
  v.data_pages = 300;
  v.stack_pages = 33;
  v.uptime_s = 12.5;
  std::string out;
  EXPECT_EQ(encode_resources({v}, 1700000000000000000, out), 4u);
  EXPECT_EQ(out,
            "resource_usage,vm=web utime=1.250000,stime=0.500001,maxrss=2048i,ixrss=0i,idrss=0i,"
            "isrss=0i,minflt=1000i,maxflt=3i,nswap=0i,inblock=2i,outblock=8i,msgsnd=0i,msgrcv=0i,"
            "nsignals=0i,nvcsw=7i,nivcsw=9i 1700000000000000000\n"
            "kinfo_mem,vm=web vsize=1073741824i,rss=2048i,tsize=10i,dsize=300i,ssize=33i,"
            "runtime=1750001i,cow_faults=0i,uptime=12.5 1700000000000000000\n"
            "vm_cpu,vm=web run_delay=2.500000,run_count=77i 1700000000000000000\n"
            "vm_io,vm=web read_bytes=1025i,write_bytes=8192i,cancelled_write_bytes=4096i,rchar=11i,"
            "wchar=12i,syscr=13i,syscw=14i 1700000000000000000\n");
}

// More bytes cancelled than written (a process that truncated dirty pages another one
// wrote): outblock is 0, never a wrapped-around count.
TEST(ProcLines, OutblockClampsAtZero) {
  VmResources v;
  v.vm = "web";
  v.counters.write_bytes = 4096;
  v.counters.cancelled_write_bytes = 8192;
  std::string out;
  encode_resources({v}, 1, out);
  EXPECT_NE(out.find(",inblock=0i,outblock=0i,"), std::string::npos) << out;
}

TEST(ProcLines, ExitEventCarriesSignalAndLifetime) {
  VmEvent ev;
  ev.kind = VmEvent::Kind::kExit;
  ev.timestamp_ns = 5;
  ev.vm = "web";
  ev.launcher = "solo5-hvt";
  ev.pid = 42;
  ev.ppid = 1;
  ev.exit_known = true;
  ev.signal = 9;
  ev.lifetime_s = 3.5;
  ev.final.utime_ns = 1'000'000'000;
  ev.final.min_flt = 10;
  ev.final.run_delay_ns = 1'500'000;
  ev.final.run_count = 4;
  ev.final.write_bytes = 1 << 20;
  ev.final.syscw = 16;
  std::string out;
  encode_vm_event(ev, out);
  EXPECT_EQ(out,
            "vm_event,event=exit,vm=web pid=42i,ppid=1i,launcher=\"solo5-hvt\",lifetime=3.5,"
            "exit_code=0i,signal=9i,utime=1.000000,stime=0.000000,minflt=10i,maxflt=0i,"
            "run_delay=0.001500,run_count=4i,read_bytes=0i,write_bytes=1048576i,"
            "cancelled_write_bytes=0i,rchar=0i,wchar=0i,syscr=0i,syscw=16i,text=\"web killed by "
            "signal 9 after 3.5 s\" 5\n");
}

// A kernel without scheduler statistics or I/O accounting: those figures are unknown, so
// they are left out rather than written as 0 (which would read as "never waits").
TEST(ProcLines, CountersTheKernelDoesNotKeepAreLeftOut) {
  VmResources v;
  v.vm = "web";
  std::string out;
  EXPECT_EQ(encode_resources({v}, 1, out, TaskCounterSupport{.cpu_wait = false, .io = false}), 2u);
  EXPECT_EQ(out.find("vm_cpu"), std::string::npos) << out;
  EXPECT_EQ(out.find("vm_io"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(encode_resources({v}, 1, out, TaskCounterSupport{.cpu_wait = true, .io = false}), 3u);
  EXPECT_NE(out.find("\nvm_cpu,vm=web run_delay=0.000000,run_count=0i 1\n"), std::string::npos);

  VmEvent ev;
  ev.kind = VmEvent::Kind::kExit;
  ev.vm = "web";
  ev.exit_known = true;
  out.clear();
  encode_vm_event(ev, out, TaskCounterSupport{.cpu_wait = false, .io = false});
  EXPECT_EQ(out,
            "vm_event,event=exit,vm=web pid=0i,ppid=0i,launcher=\"\",lifetime=0,exit_code=0i,"
            "signal=0i,utime=0.000000,stime=0.000000,minflt=0i,maxflt=0i,text=\"web exited with "
            "status 0 after 0.0 s\" 0\n");
}

TEST(ProcLines, StartEvent) {
  VmEvent ev;
  ev.timestamp_ns = 7;
  ev.vm = "db1";
  ev.launcher = "qemu";
  ev.pid = 100;
  ev.ppid = 99;
  std::string out;
  encode_vm_event(ev, out);
  EXPECT_EQ(out,
            "vm_event,event=start,vm=db1 pid=100i,ppid=99i,launcher=\"qemu\","
            "text=\"db1 started (pid 100, qemu)\" 7\n");
}

}  // namespace
}  // namespace vmscope
