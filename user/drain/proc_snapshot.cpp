#include "drain/proc_snapshot.h"

#include <unistd.h>

#include <algorithm>

#include "drain/contract_check.h"

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

const std::vector<ProcSample>& ProcAggregator::aggregate(
    const std::vector<vs_task_sample>& samples) {
  index_.clear();
  raw_.clear();
  for (const vs_task_sample& t : samples) {
    auto [it, inserted] = index_.try_emplace(t.tgid, raw_.size());
    if (inserted) raw_.emplace_back().s.tgid = t.tgid;
    Raw& r = raw_[it->second];
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
  out_.clear();
  for (Raw& r : raw_) {
    cputime_adjust(r.utime, r.stime, r.s.runtime_ns, prev_[r.s.tgid], r.s.utime_ns, r.s.stime_ns);
    out_.push_back(r.s);
  }
  std::sort(out_.begin(), out_.end(),
            [](const ProcSample& a, const ProcSample& b) { return a.tgid < b.tgid; });
  return out_;
}

}  // namespace vmscope
