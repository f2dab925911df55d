#include "drain/proc_snapshot.h"

#include <unistd.h>

#include <algorithm>

#include "drain/contract_check.h"
#include "drain/counter_sums.h"

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

void cputime_adjust(vs_task_counters& c, PrevCputime& prev) {
  uint64_t ut, st;
  cputime_adjust(c.utime_ns, c.stime_ns, c.runtime_ns, prev, ut, st);
  c.utime_ns = ut;
  c.stime_ns = st;
}

ProcSample& ProcAggregator::entry(uint32_t tgid) {
  // Records arrive by process (the task-list walk) or by tid (the task iterator: a
  // leader's tid is its tgid), so mostly in tgid order, a process's records one after
  // another. Anything else is appended too and sorted out afterwards.
  if (raw_.empty() || raw_.back().tgid != tgid) {
    if (!raw_.empty() && raw_.back().tgid > tgid) sorted_ = false;
    raw_.emplace_back().tgid = tgid;
  }
  return raw_.back();
}

void ProcAggregator::sort_and_merge() {
  order_.resize(raw_.size());
  for (uint32_t i = 0; i < order_.size(); ++i) order_[i] = i;
  std::stable_sort(order_.begin(), order_.end(),
                   [&](uint32_t a, uint32_t b) { return raw_[a].tgid < raw_[b].tgid; });
  merged_.clear();
  for (uint32_t i : order_) {
    const ProcSample& r = raw_[i];
    if (merged_.empty() || merged_.back().tgid != r.tgid) {
      merged_.push_back(r);
      continue;
    }
    ProcSample& m = merged_.back();
    m.threads += r.threads;
    add_counters(m.counters, r.counters);
    if (r.has_leader) {
      m.has_leader = true;
      m.start_boottime_ns = r.start_boottime_ns;
      m.rss_pages = r.rss_pages;
      m.vsize_bytes = r.vsize_bytes;
      m.text_pages = r.text_pages;
      m.data_pages = r.data_pages;
      m.stack_pages = r.stack_pages;
    }
  }
  raw_.swap(merged_);
}

const std::vector<ProcSample>& ProcAggregator::aggregate(std::span<const vs_task_sample> samples) {
  static const uint64_t page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  raw_.clear();
  sorted_ = true;
  for (const vs_task_sample& t : samples) {
    ProcSample& r = entry(t.tgid);
    r.threads += t.threads;
    add_counters(r.counters, t.own);
    if (t.is_leader) {
      r.has_leader = true;
      add_counters(r.counters, t.dead);
      r.start_boottime_ns = t.start_boottime_ns;
      r.rss_pages = t.rss_file_pages + t.rss_anon_pages + t.rss_shmem_pages;
      r.vsize_bytes = t.total_vm_pages * page_size;
      r.text_pages = t.text_pages;
      r.data_pages = t.data_vm_pages + t.stack_vm_pages;  // statm "data" includes the stack
      r.stack_pages = t.stack_vm_pages;
    }
  }
  if (!sorted_) sort_and_merge();
  // raw_ and prev_ are both ordered by tgid: merge them into next_prev_.
  next_prev_.clear();
  auto p = prev_.begin();
  for (ProcSample& r : raw_) {
    while (p != prev_.end() && p->tgid < r.tgid) next_prev_.push_back(*p++);
    Prev& prev = next_prev_.emplace_back(Prev{r.tgid, {}, 0, 0});
    if (p != prev_.end() && p->tgid == r.tgid) prev = *p++;
    cputime_adjust(r.counters, prev.cputime);
    vs_task_counters& c = r.counters;
    c.run_delay_ns = prev.run_delay_ns = std::max<uint64_t>(c.run_delay_ns, prev.run_delay_ns);
    c.run_count = prev.run_count = std::max<uint64_t>(c.run_count, prev.run_count);
  }
  next_prev_.insert(next_prev_.end(), p, prev_.end());
  prev_.swap(next_prev_);
  return raw_;
}

void ProcAggregator::forget(uint32_t tgid) {
  auto it = std::lower_bound(prev_.begin(), prev_.end(), tgid,
                             [](const Prev& p, uint32_t t) { return p.tgid < t; });
  if (it != prev_.end() && it->tgid == tgid) prev_.erase(it);
}

}  // namespace vmscope
