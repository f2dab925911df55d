#include "output/proc_lines.h"

#include <fmt/format.h>

#include "output/line_protocol.h"

namespace vmscope {
namespace {

double seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

// The albatross measurements and vm_cpu name and convert each counter by hand (see the
// counter lists in bpf/vmscope.h): a new task counter outside the I/O list stops the build
// here until it has its place in the schema, or is decided to have none. The I/O list is
// written as it is named (vm_io, and the exit event).
static_assert(int{VS_TASK_COUNTER_COUNT} - int{VS_TASK_IO_COUNTER_COUNT} == 9,
              "a new VS_TASK_COUNTERS entry: encode it (or note why not), then update this count");

// The fields of /proc/<pid>/io, named as the counters (VS_TASK_IO_COUNTERS).
void io_fields(LineWriter& w, const vs_task_counters& c) {
#define VS_IO_FIELD_(field, own, dead) w.field_uint(#field, c.field);
  VS_TASK_IO_COUNTERS(VS_IO_FIELD_)
#undef VS_IO_FIELD_
}

// Blocks of 512 bytes read and written, from the I/O accounting like Linux getrusage()'s
// ru_inblock/ru_oublock (task_io_get_inblock/oublock). outblock leaves out the cancelled
// writes (dirty pages truncated before writeback), as the schema defines it; getrusage
// does not subtract them, so the two differ only after such a truncation.
uint64_t inblock(const vs_task_counters& c) {
  return c.read_bytes / 512;
}
uint64_t outblock(const vs_task_counters& c) {
  return c.write_bytes > c.cancelled_write_bytes ? (c.write_bytes - c.cancelled_write_bytes) / 512
                                                 : 0;
}

}  // namespace

size_t encode_resources(const std::vector<VmResources>& vms, int64_t ts, std::string& out,
                        const TaskCounterSupport& kept, ChunkPoint* chunks) {
  LineWriter w(out);
  TagValue vm;  // escaped once for the VM's four lines
  for (const VmResources& v : vms) {
    const vs_task_counters& c = v.counters;
    vm.set(v.vm);
    // Field order as albatross writes resource_usage (struct rusage order).
    w.begin("resource_usage")
        .tag("vm", vm)
        .field_fixed("utime", seconds(c.utime_ns), 6)
        .field_fixed("stime", seconds(c.stime_ns), 6)
        .field_uint("maxrss", v.rss_pages)
        .fields(Fields::literal("ixrss=0i,idrss=0i,isrss=0i"))
        .field_uint("minflt", c.min_flt)
        .field_uint("maxflt", c.maj_flt)  // albatross' name for the major fault count
        .fields(Fields::literal("nswap=0i"))
        .field_uint("inblock", inblock(c))
        .field_uint("outblock", outblock(c))
        .fields(Fields::literal("msgsnd=0i,msgrcv=0i,nsignals=0i"))
        .field_uint("nvcsw", c.nvcsw)
        .field_uint("nivcsw", c.nivcsw)
        .end(ts);
    w.begin("kinfo_mem")
        .tag("vm", vm)
        .field_uint("vsize", v.vsize_bytes)
        .field_uint("rss", v.rss_pages)
        .field_uint("tsize", v.text_pages)
        .field_uint("dsize", v.data_pages)
        .field_uint("ssize", v.stack_pages)
        // albatross' runtime is utime+stime; runtime_ns (sum_exec_runtime) goes unencoded:
        // the adjusted times add up to it.
        .field_uint("runtime", (c.utime_ns + c.stime_ns) / 1000)
        .fields(Fields::literal("cow_faults=0i"))
        .field_float("uptime", v.uptime_s)
        .end(ts);
    if (kept.cpu_wait) {
      w.begin("vm_cpu")
          .tag("vm", vm)
          .field_fixed("run_delay", seconds(c.run_delay_ns), 6)
          .field_uint("run_count", c.run_count)
          .end(ts);
    }
    if (kept.io) {
      w.begin("vm_io").tag("vm", vm);
      io_fields(w, c);
      w.end(ts);
    }
    if (chunks) chunks->between(out);
  }
  return w.lines();
}

void encode_vm_event(const VmEvent& ev, std::string& out, const TaskCounterSupport& kept) {
  LineWriter w(out);
  bool exit = ev.kind == VmEvent::Kind::kExit;
  w.begin("vm_event").tag("event", exit ? "exit" : "start").tag("vm", ev.vm);
  w.field_uint("pid", ev.pid).field_uint("ppid", ev.ppid).field_string("launcher", ev.launcher);
  std::string text;
  if (!exit) {
    text = fmt::format("{} started (pid {}, {})", ev.vm, ev.pid, ev.launcher);
  } else {
    w.field_float("lifetime", ev.lifetime_s);
    if (ev.exit_known) {
      w.field_int("exit_code", ev.exit_code).field_int("signal", ev.signal);
      const vs_task_counters& c = ev.final;
      w.field_fixed("utime", seconds(c.utime_ns), 6).field_fixed("stime", seconds(c.stime_ns), 6);
      w.field_uint("minflt", c.min_flt).field_uint("maxflt", c.maj_flt);
      if (kept.cpu_wait)
        w.field_fixed("run_delay", seconds(c.run_delay_ns), 6).field_uint("run_count", c.run_count);
      if (kept.io) io_fields(w, c);
      text = ev.signal ? fmt::format("{} killed by signal {} after {:.1f} s", ev.vm, ev.signal,
                                     ev.lifetime_s)
                       : fmt::format("{} exited with status {} after {:.1f} s", ev.vm, ev.exit_code,
                                     ev.lifetime_s);
    } else {
      text = fmt::format("{} is gone (exit not observed)", ev.vm);
    }
  }
  w.field_string("text", text);  // Grafana annotation text
  w.end(ev.timestamp_ns);
}

}  // namespace vmscope
