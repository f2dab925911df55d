// Plain-text rendering of a top frame: the host summary, the VM table and the detail
// view, as lines. Batch mode prints them; the ncurses screen draws the same lines, so
// both show exactly the same figures.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "top/top_model.h"

namespace vmscope {

struct TopView {
  SortKey sort = SortKey::kCpu;
  bool reverse = false;
  std::string filter;
  double delay_s = 1;
  bool paused = false;
  std::string mode;  // the engine's source: "own programs" or "reading vmscope run (pid N)"
};

// Columns that fit in width (the least important ones go first), in display order.
struct TopColumn;
std::vector<const TopColumn*> columns_for_width(int width);

// "Sort: cpu (reversed)  Filter: web": one of the summary lines, also on the help screen.
std::string sort_filter_line(const TopView& v);
// The summary lines above the table; the last one is the most recent VM event.
std::vector<std::string> summary_lines(const TopFrame& f, size_t shown, const TopView& v,
                                       const std::deque<VmEvent>& events = {});
// The table's header line, with the sort column marked.
std::string table_header(const std::vector<const TopColumn*>& cols, int width, SortKey sort);
std::string table_row(const TopRow& r, const std::vector<const TopColumn*>& cols, int width);

// One VM in detail: processes, memory, every tap with per-protocol figures, its events.
std::vector<std::string> detail_lines(const TopRow& r, const std::deque<VmEvent>& events);

// A whole snapshot as `top -b` prints it (all columns, no truncation of names).
std::string batch_snapshot(const TopFrame& f, const TopView& v,
                           const std::deque<VmEvent>& events = {});

// One VM event as a line: "15:04:05 start web1 pid 1234 (qemu)".
std::string event_line(const VmEvent& e);

}  // namespace vmscope
