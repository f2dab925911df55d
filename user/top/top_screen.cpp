#include "top/top_screen.h"

#include <curses.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

namespace vmscope {
namespace {

constexpr int kEscape = 27;

// Next or previous sort key in column order, as htop's `<` and `>`.
SortKey step_sort(SortKey k, int step) {
  const auto& keys = sort_keys();
  auto it = std::find(keys.begin(), keys.end(), k);
  auto i = static_cast<int>(it - keys.begin()) + step;
  auto n = static_cast<int>(keys.size());
  return keys[static_cast<size_t>(((i % n) + n) % n)];
}

void put_line(int y, const std::string& s, int width) {
  mvaddnstr(y, 0, s.c_str(), width);
  clrtoeol();
}

const char* const kHelp[] = {
    "vmscope top: one row per VM; rates over the last interval.",
    "RX/TX are from the VM's point of view (RX = host to VM).",
    "WAIT%: runnable but waiting for a CPU (as CPU%). DISKR/s DISKW/s: storage B/s.",
    "",
    "  P  sort by CPU          M  sort by memory (RSS)",
    "  W  sort by CPU wait     D  sort by disk (read + write)",
    "  N  sort by network      F  sort by faults/s",
    "  <  >  previous / next sort column     R  reverse the order",
    "  /  filter by name (empty clears)      Esc  clear the filter",
    "  Up Down PgUp PgDn Home End  move      Enter  VM details",
    "  d  change the delay     p  pause / resume",
    "  h or ?  this help       q  quit",
    "",
    "Press any key to go back.",
};

}  // namespace

Result<std::unique_ptr<TopScreen>> TopScreen::open() {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
    return Error::msg("vmscope top needs a terminal; use -b for batch output");
  if (!initscr()) return Error::msg("initialise the terminal (ncurses initscr) failed");
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  curs_set(0);
  set_escdelay(25);
  return std::make_unique<TopScreen>(Key{});
}

TopScreen::~TopScreen() {
  endwin();
}

TopScreen::Action TopScreen::handle_keys(TopView& view, const TopModel& model) {
  Action result = Action::kNone;
  for (int ch; (ch = getch()) != ERR;) {
    Action a = handle_key(ch, view, model);
    if (a == Action::kQuit) return a;
    if (a != Action::kNone && result != Action::kDelayChanged && result != Action::kPauseChanged)
      result = a;
  }
  return result;
}

TopScreen::Action TopScreen::handle_key(int ch, TopView& view, const TopModel& model) {
  if (ch == KEY_RESIZE) return Action::kRedraw;
  if (mode_ == Mode::kFilterPrompt || mode_ == Mode::kDelayPrompt) {
    if (ch == kEscape) {
      mode_ = Mode::kTable;
    } else if (ch == '\n' || ch == KEY_ENTER) {
      Mode was = mode_;
      mode_ = Mode::kTable;
      if (was == Mode::kFilterPrompt) {
        view.filter = prompt_;
        scroll_ = 0;
        return Action::kRedraw;
      }
      double d = 0;
      auto [end, ec] = std::from_chars(prompt_.data(), prompt_.data() + prompt_.size(), d);
      if (ec != std::errc() || end != prompt_.data() + prompt_.size() || !(d >= 0.1 && d <= 3600)) {
        message_ = "delay \"" + prompt_ + "\": expected seconds between 0.1 and 3600";
        return Action::kRedraw;
      }
      view.delay_s = d;
      return Action::kDelayChanged;
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
      if (!prompt_.empty()) prompt_.pop_back();
    } else if (ch >= 32 && ch < 127 && prompt_.size() < 64) {
      prompt_ += static_cast<char>(ch);
    }
    return Action::kRedraw;
  }
  if (mode_ == Mode::kHelp) {
    mode_ = Mode::kTable;
    return ch == 'q' ? Action::kQuit : Action::kRedraw;
  }
  message_.clear();
  auto rows = select_rows(model.frame(), view.sort, view.reverse, view.filter);
  auto sel =
      std::find_if(rows.begin(), rows.end(), [&](const TopRow* r) { return r->vm == selected_; });
  int pos = sel == rows.end() ? 0 : static_cast<int>(sel - rows.begin());
  auto move_to = [&](int p) {
    if (rows.empty()) return;
    p = std::clamp(p, 0, static_cast<int>(rows.size()) - 1);
    selected_ = rows[static_cast<size_t>(p)]->vm;
  };
  switch (ch) {
    case 'q':
      return Action::kQuit;
    case 'h':
    case '?':
      mode_ = Mode::kHelp;
      break;
    case 'P':
      view.sort = SortKey::kCpu;
      break;
    case 'M':
      view.sort = SortKey::kMem;
      break;
    case 'W':
      view.sort = SortKey::kWait;
      break;
    case 'D':
      view.sort = SortKey::kDisk;
      break;
    case 'N':
      view.sort = SortKey::kNet;
      break;
    case 'F':
      view.sort = SortKey::kFaults;
      break;
    case '<':
      view.sort = step_sort(view.sort, -1);
      break;
    case '>':
      view.sort = step_sort(view.sort, +1);
      break;
    case 'R':
      view.reverse = !view.reverse;
      break;
    case '/':
      mode_ = Mode::kFilterPrompt;
      prompt_ = view.filter;
      break;
    case 'd':
      mode_ = Mode::kDelayPrompt;
      prompt_.clear();
      break;
    case 'p':
      view.paused = !view.paused;
      return Action::kPauseChanged;
    case kEscape:
      if (mode_ == Mode::kDetail)
        mode_ = Mode::kTable;
      else
        view.filter.clear();
      break;
    case '\n':
    case KEY_ENTER:
    case KEY_RIGHT:
      if (mode_ == Mode::kTable && !rows.empty()) {
        move_to(pos);
        mode_ = Mode::kDetail;
        detail_scroll_ = 0;
      } else if (mode_ == Mode::kDetail && ch != KEY_RIGHT) {
        mode_ = Mode::kTable;
      }
      break;
    case KEY_LEFT:
    case KEY_BACKSPACE:
      mode_ = Mode::kTable;
      break;
    case KEY_UP:
      if (mode_ == Mode::kDetail)
        detail_scroll_ = std::max(0, detail_scroll_ - 1);
      else
        move_to(pos - 1);
      break;
    case KEY_DOWN:
      if (mode_ == Mode::kDetail)
        ++detail_scroll_;
      else
        move_to(pos + 1);
      break;
    case KEY_PPAGE:
      move_to(pos - table_rows_);
      break;
    case KEY_NPAGE:
      move_to(pos + table_rows_);
      break;
    case KEY_HOME:
      move_to(0);
      break;
    case KEY_END:
      move_to(static_cast<int>(rows.size()) - 1);
      break;
    default:
      return Action::kNone;
  }
  return Action::kRedraw;
}

void TopScreen::draw(const TopModel& model, const TopView& view) {
  erase();
  switch (mode_) {
    case Mode::kDetail:
      draw_detail(model);
      break;
    case Mode::kHelp:
      draw_help(view);
      break;
    default:
      draw_table(model, view);
  }
  if (mode_ == Mode::kFilterPrompt || mode_ == Mode::kDelayPrompt) draw_prompt();
  refresh();
}

void TopScreen::draw_table(const TopModel& model, const TopView& view) {
  const int width = COLS, height = LINES;
  auto rows = select_rows(model.frame(), view.sort, view.reverse, view.filter);
  int y = 0;
  for (const std::string& l : summary_lines(model.frame(), rows.size(), view, model.events())) {
    if (y >= height) return;
    put_line(y++, l, width);
  }
  if (!message_.empty() && y < height) {
    attron(A_BOLD);
    put_line(y++, message_, width);
    attroff(A_BOLD);
  }
  if (y >= height) return;
  auto cols = columns_for_width(width);
  const std::string header = table_header(cols, width, view.sort);
  attron(A_REVERSE);
  put_line(y, header, width);
  mvhline(y, std::min(width, static_cast<int>(header.size())), ' ', width);
  attroff(A_REVERSE);
  ++y;
  table_rows_ = std::max(1, height - y);
  auto sel =
      std::find_if(rows.begin(), rows.end(), [&](const TopRow* r) { return r->vm == selected_; });
  int pos = sel == rows.end() ? 0 : static_cast<int>(sel - rows.begin());
  if (sel == rows.end() && !rows.empty()) selected_ = rows.front()->vm;
  // Keep the cursor on screen.
  if (pos < scroll_) scroll_ = pos;
  if (pos >= scroll_ + table_rows_) scroll_ = pos - table_rows_ + 1;
  scroll_ = std::clamp(scroll_, 0, std::max(0, static_cast<int>(rows.size()) - table_rows_));
  for (int i = scroll_; i < static_cast<int>(rows.size()) && y < height; ++i, ++y) {
    bool cursor = i == pos;
    if (cursor) attron(A_BOLD | A_REVERSE);
    put_line(y, table_row(*rows[static_cast<size_t>(i)], cols, width), width);
    if (cursor) attroff(A_BOLD | A_REVERSE);
  }
  if (rows.empty() && y < height)
    put_line(y, view.filter.empty() ? "no VMs found" : "no VM matches the filter", width);
}

void TopScreen::draw_detail(const TopModel& model) {
  const TopRow* row = nullptr;
  for (const TopRow& r : model.frame().rows)
    if (r.vm == selected_) row = &r;
  if (!row) {
    put_line(0, "VM " + selected_ + " is gone.  Esc: back", COLS);
    return;
  }
  auto lines = detail_lines(*row, model.events());
  detail_scroll_ =
      std::clamp(detail_scroll_, 0, std::max(0, static_cast<int>(lines.size()) - (LINES - 1)));
  int y = 0;
  attron(A_REVERSE);
  const std::string keys = "Esc/Enter: back   Up/Down: scroll   q: quit";
  put_line(y++, keys, COLS);
  mvhline(0, static_cast<int>(keys.size()), ' ', COLS);
  attroff(A_REVERSE);
  for (size_t i = static_cast<size_t>(detail_scroll_); i < lines.size() && y < LINES; ++i)
    put_line(y++, lines[i], COLS);
}

void TopScreen::draw_help(const TopView& view) {
  int y = 0;
  for (const char* l : kHelp) {
    if (y >= LINES) break;
    put_line(y++, l, COLS);
  }
  if (y + 1 < LINES) put_line(y + 1, "current: " + sort_filter_line(view), COLS);
}

void TopScreen::draw_prompt() {
  const std::string label =
      mode_ == Mode::kFilterPrompt ? "filter VMs by name: " : "delay in seconds: ";
  attron(A_BOLD);
  put_line(LINES - 1, label + prompt_, COLS);
  attroff(A_BOLD);
}

}  // namespace vmscope
