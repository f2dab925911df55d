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
#define VS_IO_KEY_(field, own, dead) #field,
constexpr UintKeys kIoKeys{VS_TASK_IO_COUNTERS(VS_IO_KEY_)};
#undef VS_IO_KEY_
void io_fields(LineWriter& w, const vs_task_counters& c) {
#define VS_IO_VALUE_(field, own, dead) , c.field
  w.uints(kIoKeys VS_TASK_IO_COUNTERS(VS_IO_VALUE_));
#undef VS_IO_VALUE_
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

// resource_usage after utime and stime, in struct rusage order as albatross writes it:
// maxflt is albatross' name for the major faults; what Linux does not count is 0.
constexpr UintKeys kRusageKeys{"maxrss", "ixrss",    "idrss",   "isrss",    "minflt",
                               "maxflt", "nswap",    "inblock", "outblock", "msgsnd",
                               "msgrcv", "nsignals", "nvcsw",   "nivcsw"};
// kinfo_mem before uptime; albatross' runtime is utime+stime in microseconds.
constexpr UintKeys kMemKeys{"vsize", "rss", "tsize", "dsize", "ssize", "runtime", "cow_faults"};

}  // namespace

size_t encode_resources(const std::vector<VmResources>& vms, int64_t ts, std::string& out,
                        const TaskCounterSupport& kept, ChunkPoint* chunks) {
  LineWriter w(out);
  TagValue vm;  // escaped once for the VM's four lines
  for (const VmResources& v : vms) {
    const vs_task_counters& c = v.counters;
    vm.set(v.vm);
    w.begin("resource_usage")
        .tag("vm", vm)
        .field_fixed("utime", seconds(c.utime_ns), 6)
        .field_fixed("stime", seconds(c.stime_ns), 6)
        .uints(kRusageKeys, v.rss_pages, 0, 0, 0, c.min_flt, c.maj_flt, 0, inblock(c), outblock(c),
               0, 0, 0, c.nvcsw, c.nivcsw)
        .end(ts);
    // runtime_ns (sum_exec_runtime) goes unencoded: the adjusted times add up to it.
    w.begin("kinfo_mem")
        .tag("vm", vm)
        .uints(kMemKeys, v.vsize_bytes, v.rss_pages, v.text_pages, v.data_pages, v.stack_pages,
               (c.utime_ns + c.stime_ns) / 1000, 0)
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
