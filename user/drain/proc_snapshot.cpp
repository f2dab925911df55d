#include "drain/proc_snapshot.h"

#include <unistd.h>

#include <map>

namespace vmscope {

void cputime_adjust(uint64_t utime, uint64_t stime, uint64_t rtime, PrevCputime& prev, uint64_t& ut,
                    uint64_t& st) {
  if (prev.stime + prev.utime < rtime) {
    uint64_t s;
    if (stime == 0) {
      s = 0;
    } else if (utime == 0) {
      s = rtime;
    } else {
      s = static_cast<uint64_t>(static_cast<unsigned __int128>(stime) * rtime / (stime + utime));
      if (s > rtime) s = rtime;
    }
    if (s < prev.stime) s = prev.stime;
    uint64_t u = rtime - s;
    if (u < prev.utime) {
      u = prev.utime;
      s = rtime - u;
    }
    prev.stime = s;
    prev.utime = u;
  }
  ut = prev.utime;
  st = prev.stime;
}

std::vector<ProcSample> ProcAggregator::aggregate(const std::vector<vs_task_sample>& samples) {
  struct Raw {
    ProcSample s;
    uint64_t utime = 0, stime = 0;
  };
  std::map<uint32_t, Raw> by_tgid;
  for (const vs_task_sample& t : samples) {
    Raw& r = by_tgid[t.tgid];
    r.s.tgid = t.tgid;
    r.s.threads++;
    auto add = [&](const vs_task_counters& c) {
      r.utime += c.utime_ns;
      r.stime += c.stime_ns;
      r.s.runtime_ns += c.runtime_ns;
      r.s.min_flt += c.min_flt;
      r.s.maj_flt += c.maj_flt;
      r.s.nvcsw += c.nvcsw;
      r.s.nivcsw += c.nivcsw;
    };
    add(t.own);
    if (t.is_leader) {
      add(t.dead);
      r.s.start_boottime_ns = t.start_boottime_ns;
      r.s.rss_pages = t.rss_file_pages + t.rss_anon_pages + t.rss_shmem_pages;
      static const uint64_t page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
      r.s.vsize_bytes = t.total_vm_pages * page_size;
      r.s.text_pages = t.text_pages;
      r.s.data_pages = t.data_vm_pages + t.stack_vm_pages;  // statm "data" includes the stack
      r.s.stack_pages = t.stack_vm_pages;
    }
  }
  std::vector<ProcSample> out;
  out.reserve(by_tgid.size());
  for (auto& [tgid, r] : by_tgid) {
    cputime_adjust(r.utime, r.stime, r.s.runtime_ns, prev_[tgid], r.s.utime_ns, r.s.stime_ns);
    out.push_back(r.s);
  }
  return out;
}

}  // namespace vmscope
