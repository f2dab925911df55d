// What `vmscope top` prints: figures rounded for people, a table that fits the terminal
// and never loses its essential columns, and the batch/detail text built from a frame.
#include "top/top_text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "common/units.h"

namespace vmscope {
namespace {

// Units ------------------------------------------------------------------------------

struct UnitCase {
  double value;
  std::string want;
};

void PrintTo(const UnitCase& c, std::ostream* os) {
  *os << c.value << " -> " << c.want;
}

class HumanSi : public ::testing::TestWithParam<UnitCase> {};
TEST_P(HumanSi, Renders) {
  EXPECT_EQ(human_si(GetParam().value), GetParam().want) << GetParam().value;
}
INSTANTIATE_TEST_SUITE_P(
    Table, HumanSi,
    ::testing::Values(UnitCase{0, "0"}, UnitCase{7, "7"}, UnitCase{42, "42"}, UnitCase{999, "999"},
                      UnitCase{999.4, "999"},
                      // Rounding to 1000 moves to the next unit instead of printing "1000".
                      UnitCase{999.5, "1.00k"}, UnitCase{1000, "1.00k"}, UnitCase{1234, "1.23k"},
                      UnitCase{9994, "9.99k"},
                      // 9.995k would round to "10.00k" with two decimals: one decimal instead.
                      UnitCase{9995, "10.0k"}, UnitCase{12345, "12.3k"}, UnitCase{99949, "99.9k"},
                      UnitCase{99950, "100k"}, UnitCase{123456, "123k"}, UnitCase{999499, "999k"},
                      UnitCase{999500, "1.00M"}, UnitCase{1e6, "1.00M"}, UnitCase{45.6e6, "45.6M"},
                      UnitCase{7.89e9, "7.89G"}, UnitCase{1e12, "1.00T"}, UnitCase{2.5e15, "2.50P"},
                      UnitCase{-5, "0"}));  // a negative rate is shown as none

class HumanBytes : public ::testing::TestWithParam<UnitCase> {};
TEST_P(HumanBytes, Renders) {
  EXPECT_EQ(human_bytes(GetParam().value), GetParam().want) << GetParam().value;
}
INSTANTIATE_TEST_SUITE_P(
    Table, HumanBytes,
    ::testing::Values(UnitCase{0, "0"}, UnitCase{512, "512"}, UnitCase{999, "999"},
                      UnitCase{1024, "1.00K"}, UnitCase{1536, "1.50K"},
                      UnitCase{10 * 1024, "10.0K"}, UnitCase{512 * 1024, "512K"},
                      UnitCase{1024 * 1024, "1.00M"}, UnitCase{1.5 * 1024 * 1024, "1.50M"},
                      // 1023.6K rounds up into the next unit, never "1024K" or "1.00e3K".
                      UnitCase{1023.6 * 1024, "1.00M"},
                      UnitCase{23.4 * 1024 * 1024 * 1024, "23.4G"},
                      UnitCase{4.0 * 1024 * 1024 * 1024 * 1024, "4.00T"}, UnitCase{-1, "0"}));

class HumanDuration : public ::testing::TestWithParam<UnitCase> {};
TEST_P(HumanDuration, Renders) {
  EXPECT_EQ(human_duration(GetParam().value), GetParam().want) << GetParam().value;
}
INSTANTIATE_TEST_SUITE_P(Table, HumanDuration,
                         ::testing::Values(UnitCase{0, "0m00s"}, UnitCase{5, "0m05s"},
                                           UnitCase{59.9, "0m59s"}, UnitCase{60, "1m00s"},
                                           UnitCase{59 * 60 + 2, "59m02s"},
                                           UnitCase{3599, "59m59s"}, UnitCase{3600, "1h00m"},
                                           UnitCase{3 * 3600 + 7 * 60 + 59, "3h07m"},
                                           UnitCase{86399, "23h59m"}, UnitCase{86400, "1d00h"},
                                           UnitCase{12 * 86400 + 4 * 3600 + 1, "12d04h"},
                                           UnitCase{-3, "0m00s"}));

// Table ------------------------------------------------------------------------------

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

const std::vector<std::string> kAllHeaders = {
    "VM",      "LAUNCHER", "PID",     "CPU%",  "WAIT%",  "RSS",    "FLT/s", "DISKR/s",
    "DISKW/s", "RXbit/s",  "TXbit/s", "PKT/s", "CONN/s", "DROP/s", "UPTIME"};

// A row with the widest figures an operator can see.
TopRow busy_row(std::string vm) {
  TopRow r;
  r.vm = std::move(vm);
  r.launcher = "solo5-hvt";
  r.pid = 4194304;  // pid_max
  r.has_process = true;
  r.rates_known = true;
  r.cpu_pct = 1234.5;
  r.wait_pct = 1999.9;
  r.disk_read_Bps = 1023.9 * (1 << 20);
  r.disk_write_Bps = 999.9 * (1 << 30);
  r.rss_bytes = 123ull << 30;
  r.faults_per_s = 98765;
  r.rx_bps = 9.87e9;
  r.tx_bps = 123.4e6;
  r.pps = 999999;
  r.conns_per_s = 12345;
  r.drops_per_s = 7;
  r.uptime_s = 400 * 86400;
  return r;
}

TEST(TopTable, Width80KeepsEssentialColumnsAndFits) {
  auto cols = columns_for_width(80);
  std::string header = table_header(cols, 80, SortKey::kCpu);
  EXPECT_LE(header.size(), 80u) << header;
  std::vector<std::string> hw = words(header);
  for (std::string& w : hw) std::erase(w, '*');
  for (const char* must : {"VM", "CPU%", "RSS", "FLT/s", "RXbit/s", "TXbit/s"})
    EXPECT_NE(std::find(hw.begin(), hw.end(), must), hw.end()) << must << " in: " << header;
  EXPECT_EQ(hw.size(), cols.size());
  EXPECT_LT(cols.size(), kAllHeaders.size());  // 15 columns do not fit in 80
  std::string line = table_row(busy_row("web-1"), cols, 80);
  EXPECT_LE(line.size(), 80u) << line;
  EXPECT_EQ(line.size(), header.size());
}

// At 80 columns, what a VM uses and how long it waits stay; the rest comes back wider.
TEST(TopTable, ColumnsAt80And90) {
  auto headers = [](int width) {
    std::vector<std::string> hw =
        words(table_header(columns_for_width(width), width, SortKey::kName));
    for (std::string& w : hw) std::erase(w, '*');
    return hw;
  };
  EXPECT_EQ(headers(80), (std::vector<std::string>{"VM", "CPU%", "WAIT%", "RSS", "FLT/s", "DISKR/s",
                                                   "DISKW/s", "RXbit/s", "TXbit/s"}));
  EXPECT_EQ(headers(90), (std::vector<std::string>{"VM", "PID", "CPU%", "WAIT%", "RSS", "FLT/s",
                                                   "DISKR/s", "DISKW/s", "RXbit/s", "TXbit/s"}));
  // The disk pair goes as one: never a read column without its write column.
  for (int width = 40; width <= 200; ++width) {
    auto hw = headers(width);
    EXPECT_EQ(std::count(hw.begin(), hw.end(), "DISKR/s"),
              std::count(hw.begin(), hw.end(), "DISKW/s"))
        << width;
  }
}

TEST(TopTable, EssentialColumnsStayWhenVeryNarrow) {
  auto cols = columns_for_width(40);
  std::vector<std::string> hw = words(table_header(cols, 40, SortKey::kName));
  for (std::string& w : hw) std::erase(w, '*');
  EXPECT_EQ(hw, (std::vector<std::string>{"VM", "CPU%", "RSS", "FLT/s", "RXbit/s", "TXbit/s"}));
}

TEST(TopTable, RowsAndHeaderFitEveryWidth) {
  for (int width : {70, 80, 81, 90, 100, 120, 160, 200}) {
    auto cols = columns_for_width(width);
    std::string header = table_header(cols, width, SortKey::kCpu);
    std::string line = table_row(busy_row("a-rather-long-vm-name-for-this-table"), cols, width);
    EXPECT_LE(header.size(), static_cast<size_t>(width)) << width;
    EXPECT_EQ(line.size(), header.size()) << width << ": " << line;
    // Columns come and go whole: every row cell is in its column.
    EXPECT_EQ(words(header).size(), cols.size()) << width;
  }
}

TEST(TopTable, Width200ShowsAllColumnsInOrder) {
  auto cols = columns_for_width(200);
  ASSERT_EQ(cols.size(), 15u);
  std::vector<std::string> hw = words(table_header(cols, 200, SortKey::kName));
  for (std::string& w : hw) std::erase(w, '*');
  EXPECT_EQ(hw, kAllHeaders);
}

struct MarkCase {
  SortKey key;
  std::string marked;
};

void PrintTo(const MarkCase& c, std::ostream* os) {
  *os << c.marked;
}

class TopHeaderMark : public ::testing::TestWithParam<MarkCase> {};

// The sort column is marked, its whole header still readable, and nothing else marked.
TEST_P(TopHeaderMark, MarksOnlyTheSortColumn) {
  auto cols = columns_for_width(200);
  std::string header = table_header(cols, 200, GetParam().key);
  // The marked header must stay whole and separate ("*RXbit/s", not "*RXbit/").
  std::vector<std::string> hw = words(header);
  EXPECT_TRUE(std::find(hw.begin(), hw.end(), GetParam().marked) != hw.end())
      << "no \"" << GetParam().marked << "\" in: " << header;
  EXPECT_EQ(std::count(header.begin(), header.end(), '*'), 1) << header;
}

INSTANTIATE_TEST_SUITE_P(
    Keys, TopHeaderMark,
    ::testing::Values(MarkCase{SortKey::kName, "VM*"}, MarkCase{SortKey::kPid, "*PID"},
                      MarkCase{SortKey::kCpu, "*CPU%"}, MarkCase{SortKey::kWait, "*WAIT%"},
                      MarkCase{SortKey::kMem, "*RSS"}, MarkCase{SortKey::kFaults, "*FLT/s"},
                      MarkCase{SortKey::kRx, "*RXbit/s"}, MarkCase{SortKey::kTx, "*TXbit/s"},
                      MarkCase{SortKey::kPkts, "*PKT/s"}, MarkCase{SortKey::kConns, "*CONN/s"},
                      MarkCase{SortKey::kDrops, "*DROP/s"}, MarkCase{SortKey::kUptime, "*UPTIME"}),
    [](const ::testing::TestParamInfo<MarkCase>& i) {
      return std::string(sort_key_name(i.param.key));
    });

// Disk sorts by read + write: both its columns are marked, as RX and TX for network.
TEST(TopTable, DiskSortMarksBothDiskColumns) {
  for (SortKey key : {SortKey::kDisk, SortKey::kNet}) {
    std::string header = table_header(columns_for_width(200), 200, key);
    std::vector<std::string> hw = words(header);
    std::vector<std::string> marked;
    for (const std::string& w : hw)
      if (w.find('*') != std::string::npos) marked.push_back(w);
    const std::vector<std::string> want = key == SortKey::kDisk
                                              ? std::vector<std::string>{"*DISKR/s", "*DISKW/s"}
                                              : std::vector<std::string>{"*RXbit/s", "*TXbit/s"};
    EXPECT_EQ(marked, want) << header;
  }
}

TEST(TopTable, LongVmNameKeepsItsEnd) {
  auto cols = columns_for_width(80);
  const std::string name = "customer-frontend-web-07-extra-long";
  std::string line = table_row(busy_row(name), cols, 80);
  // The name column is what the other columns leave of 80: more than its minimum of 12,
  // less than this name. The cut name has no space, so the first one ends the column.
  const int name_w = static_cast<int>(line.find(' '));
  ASSERT_GT(name_w, 12) << line;
  ASSERT_GT(name.size(), static_cast<size_t>(name_w));
  EXPECT_EQ(line.substr(0, name_w), "~" + name.substr(name.size() - (name_w - 1))) << line;
  EXPECT_EQ(line[name_w], ' ');
  // A short name is padded, not marked.
  std::string short_line = table_row(busy_row("db"), cols, 80);
  EXPECT_EQ(short_line.substr(0, name_w), "db" + std::string(name_w - 2, ' '));
}

TEST(TopTable, UnknownFiguresAreDashes) {
  TopRow r;
  r.vm = "orphan";  // a tap nobody holds, first sample
  auto cols = columns_for_width(200);
  std::vector<std::string> w = words(table_row(r, cols, 200));
  std::vector<std::string> want(15, "-");
  want[0] = "orphan";
  EXPECT_EQ(w, want);
}

TEST(TopTable, RowCells) {
  TopRow r;
  r.vm = "web";
  r.launcher = "qemu";
  r.pid = 1234;
  r.has_process = true;
  r.rates_known = true;
  r.cpu_pct = 25;
  r.wait_pct = 12.34;
  r.rss_bytes = 512ull << 20;
  r.faults_per_s = 1500;
  r.disk_read_Bps = 1536;
  r.disk_write_Bps = 3 << 20;
  r.rx_bps = 8000;
  r.tx_bps = 4000;
  r.pps = 15;
  r.conns_per_s = 3;
  r.drops_per_s = 2;
  r.uptime_s = 3 * 3600 + 7 * 60;
  auto cols = columns_for_width(200);
  EXPECT_EQ(
      words(table_row(r, cols, 200)),
      (std::vector<std::string>{"web", "qemu", "1234", "25.0", "12.3", "512M", "1.50k", "1.50K",
                                "3.00M", "8.00k", "4.00k", "15", "3", "2", "3h07m"}));
}

// Frames -----------------------------------------------------------------------------

TopFrame frame() {
  TopFrame f;
  f.timestamp_ns = 1'700'000'000'000'000'000;
  f.interval_s = 2;
  TopRow web1 = busy_row("web1");
  web1.rss_bytes = 100 << 20;
  web1.cpu_pct = 50;
  TopRow web2 = busy_row("web2-with-a-name-longer-than-the-column");
  web2.rss_bytes = 300 << 20;
  web2.cpu_pct = 10;
  TopRow db = busy_row("db");
  db.rss_bytes = 200 << 20;
  db.cpu_pct = 90;
  TopRow orphan;
  orphan.vm = "orphan-web";  // no process
  orphan.rss_bytes = 0;
  f.rows = {web1, web2, db, orphan};
  f.rx_bps = 12000;
  f.tx_bps = 3400;
  f.bridges.push_back({"br0", 2, 8000, 1000});
  return f;
}

TEST(TopBatch, SummaryHeaderAndOneLinePerRow) {
  TopFrame f = frame();
  TopView v;
  v.sort = SortKey::kMem;
  v.filter = "WEB";
  v.delay_s = 0.5;
  v.mode = "attached";
  std::vector<std::string> lines = split_lines(batch_snapshot(f, v));
  ASSERT_EQ(lines.size(), 5u + 1 + 1 + 3) << batch_snapshot(f, v);
  EXPECT_EQ(lines[0].rfind("vmscope top - ", 0), 0u) << lines[0];
  EXPECT_TRUE(contains(lines[0], "VMs: 4 (3 running, 3 shown)")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "delay 0.5s")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "attached")) << lines[0];
  EXPECT_EQ(lines[1].rfind("Net: RX 12.0kbit/s  TX 3.40kbit/s", 0), 0u) << lines[1];
  EXPECT_TRUE(contains(lines[1], "interval 2.00s")) << lines[1];
  EXPECT_EQ(lines[2], "Bridges:  br0 (2 taps) RX 8.00k TX 1.00k");
  EXPECT_EQ(lines[3], "Sort: mem  Filter: WEB");
  EXPECT_EQ(lines[4], "Last event: -");
  EXPECT_EQ(lines[5], "");
  std::vector<std::string> hw = words(lines[6]);
  ASSERT_EQ(hw.size(), 15u) << lines[6];
  EXPECT_EQ(hw[5], "*RSS");
  // Filtered to the web VMs, largest RSS first, full names.
  EXPECT_EQ(words(lines[7])[0], "web2-with-a-name-longer-than-the-column");
  EXPECT_EQ(words(lines[8])[0], "web1");
  EXPECT_EQ(words(lines[9])[0], "orphan-web");
  for (size_t i = 6; i < lines.size(); ++i) EXPECT_EQ(lines[i].size(), lines[6].size()) << i;
}

TEST(TopBatch, ReverseAndNoFilter) {
  TopFrame f = frame();
  TopView v;
  v.sort = SortKey::kCpu;
  v.reverse = true;
  std::vector<std::string> lines = split_lines(batch_snapshot(f, v));
  ASSERT_EQ(lines.size(), 5u + 1 + 1 + 4);
  EXPECT_EQ(lines[3], "Sort: cpu (reversed)  Filter: -");
  EXPECT_EQ(lines[4], "Last event: -");
  EXPECT_EQ(words(lines[7])[0], "orphan-web");  // cpu 0
  EXPECT_EQ(words(lines[8])[0], "web2-with-a-name-longer-than-the-column");
  EXPECT_EQ(words(lines[9])[0], "web1");
  EXPECT_EQ(words(lines[10])[0], "db");
}

TEST(TopBatch, LastEventLineShowsTheNewest) {
  std::deque<VmEvent> events(2);
  events[0].vm = "old";
  events[1].vm = "web1";
  events[1].kind = VmEvent::Kind::kExit;
  events[1].exit_known = true;
  events[1].signal = 9;
  events[1].pid = 4242;
  events[1].lifetime_s = 62;
  auto lines = split_lines(batch_snapshot(frame(), TopView{}, events));
  ASSERT_GT(lines.size(), 4u);
  EXPECT_TRUE(contains(lines[4], "web1 exit   pid 4242 killed by signal 9 after 1m02s"))
      << lines[4];
  EXPECT_FALSE(contains(lines[4], "old")) << lines[4];
}

TEST(TopBatch, SummaryFlagsFailingSources) {
  TopFrame f;
  f.net_ok = false;
  f.procs_ok = false;
  TopView v;
  auto lines = summary_lines(f, 0, v);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(contains(lines[1], "[network drain failing]")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "[process metrics unavailable]")) << lines[1];
  EXPECT_EQ(lines[2], "Bridges: none");
  v.paused = true;
  EXPECT_TRUE(contains(summary_lines(f, 0, v)[0], "PAUSED"));
}

// Detail view ------------------------------------------------------------------------

vs_net_counters counters(uint64_t tcp, uint64_t udp, uint64_t icmp, uint64_t other) {
  vs_net_counters c{};
  c.l4_bytes[VS_L4_TCP] = tcp;
  c.l4_bytes[VS_L4_UDP] = udp;
  c.l4_bytes[VS_L4_ICMP] = icmp;
  c.l4_bytes[VS_L4_OTHER] = other;
  c.bytes = tcp + udp + icmp + other;
  c.packets = 100;
  c.mcast_packets = 3;
  c.bcast_packets = 2;
  c.tcp_syns = 7;
  return c;
}

VmEvent event(VmEvent::Kind kind, std::string vm, uint32_t pid) {
  VmEvent e;
  e.kind = kind;
  e.vm = std::move(vm);
  e.pid = pid;
  e.launcher = "qemu";
  e.timestamp_ns = 1'700'000'000'000'000'000;
  return e;
}

TopRow detail_row() {
  TopRow r = busy_row("web");
  r.pid = 1234;
  r.processes = 2;
  r.threads = 9;
  r.cpu_pct = 25;
  r.utime_s = 1.5;
  r.stime_s = 0.25;
  r.rss_bytes = 512ull << 20;
  r.vsize_bytes = 2ull << 30;
  r.faults_per_s = 110;
  r.maj_faults_per_s = 10;
  r.min_flt = 300;
  r.maj_flt = 30;
  for (int i = 0; i < 2; ++i) {
    TopTap& t = r.taps.emplace_back();
    t.name = i ? "vmmtap1" : "vmmtap0";
    t.bridge = i ? "" : "br0";
    t.ifindex = 5 + i;
    t.mtu = 1500;
    t.rx_bps = 8000;
    t.tx_bps = 4000;
    t.rx_pps = 10;
    t.tx_pps = 5;
    t.rx = counters(2048, 1024, 0, 512);
    t.tx = counters(1536 * 1024, 0, 100, 0);
    t.errors = {.rx_errors = 1, .rx_dropped = 2, .tx_errors = 3, .tx_dropped = 4};
    t.drops_per_s = 2;
  }
  return r;
}

TEST(TopDetail, EveryTapWithProtocolFigures) {
  std::vector<std::string> lines = detail_lines(detail_row(), {});
  std::string all;
  for (const std::string& l : lines) all += l + '\n';
  EXPECT_EQ(lines[0], "VM web  launcher solo5-hvt  pid 1234");
  EXPECT_TRUE(contains(all, "processes 2  threads 9")) << all;
  EXPECT_TRUE(contains(all, "CPU 25.0%")) << all;
  EXPECT_TRUE(contains(all, "RSS 512M  virtual 2.00G  faults 110/s (major 10/s)")) << all;
  EXPECT_TRUE(contains(all, "tap vmmtap0 (ifindex 5, mtu 1500, bridge br0)")) << all;
  EXPECT_TRUE(contains(all, "tap vmmtap1 (ifindex 6, mtu 1500, bridge -)")) << all;
  size_t rx_rows = 0, tx_rows = 0;
  for (const std::string& l : lines) {
    std::vector<std::string> w = words(l);
    if (w.empty()) continue;
    if (w[0] == "bit/s") {
      EXPECT_EQ(w, (std::vector<std::string>{"bit/s", "pkt/s", "bytes", "TCP", "UDP", "ICMP",
                                             "other", "mcast", "SYNs"}));
    }
    if (w[0] == "RX") {
      ++rx_rows;
      // bit/s pkt/s bytes TCP UDP ICMP other mcast+bcast SYNs
      EXPECT_EQ(w, (std::vector<std::string>{"RX", "8.00k", "10", "3.50K", "2.00K", "1.00K", "0",
                                             "512", "5", "7"}));
    }
    if (w[0] == "TX") {
      ++tx_rows;
      EXPECT_EQ(w, (std::vector<std::string>{"TX", "4.00k", "5", "1.50M", "1.50M", "0", "100", "0",
                                             "5", "7"}));
    }
  }
  EXPECT_EQ(rx_rows, 2u);
  EXPECT_EQ(tx_rows, 2u);
  EXPECT_TRUE(contains(all, "errors rx 1 tx 3  dropped rx 2 tx 4  (2/s)")) << all;
  EXPECT_TRUE(contains(all, "none recorded")) << all;
}

// The lines from the one equal to `first` on (empty if there is none).
std::vector<std::string> lines_from(const std::vector<std::string>& lines, const std::string& first,
                                    size_t n) {
  auto it = std::find(lines.begin(), lines.end(), first);
  if (it == lines.end()) return {};
  return std::vector<std::string>(it, it + std::min<ptrdiff_t>(lines.end() - it, n));
}

TEST(TopDetail, CpuWaitAndDisk) {
  TopRow r = detail_row();
  r.wait_pct = 12.5;
  r.run_delay_s = 3.21;
  r.run_count = 4567;
  r.disk_read_Bps = 1.5 * (1 << 20);
  r.disk_write_Bps = 512 * 1024;
  r.read_bytes = static_cast<uint64_t>(1.2 * (1 << 30));
  r.write_bytes = 300 << 20;
  r.cancelled_write_bytes = 4096;
  r.syscr_per_s = 120;
  r.syscw_per_s = 30;
  r.syscr = 5000;
  r.syscw = 800;
  r.rchar = 2ull << 30;
  r.wchar = 400 << 20;
  std::vector<std::string> lines = detail_lines(r, {});
  EXPECT_EQ(
      lines_from(lines, "  CPU wait 12.5%  (3.210s waited in all, 4567 timeslices)", 3),
      (std::vector<std::string>{
          "  CPU wait 12.5%  (3.210s waited in all, 4567 timeslices)",
          "  disk read 1.50M/s  write 512K/s  (totals: read 1.20G, written 300M, cancelled "
          "4.00K)",
          "  I/O syscalls read 120/s  write 30/s  (totals: 5000 reads of 2.00G, 800 writes of "
          "400M)"}));
}

vs_service_counters total_service() {
  vs_service_counters c{};
  c.tcp_syn_in = 1200;
  c.tcp_accepted = 1100;
  c.tcp_refused = 80;
  c.tcp_unanswered = 20;
  c.tcp_rst_out = 95;
  c.handshake_count = 1100;
  c.handshake_sum_us = 1100 * 380;
  c.handshake_le_100us = 300;
  c.handshake_le_1ms = 1000;
  c.handshake_le_10ms = 1090;
  c.handshake_le_100ms = 1100;
  c.handshake_le_1s = 1100;
  c.tcp_connect_out = 40;
  c.tcp_connect_ok = 39;
  c.tcp_connect_refused = 1;
  c.connect_count = 39;
  c.connect_sum_us = 39 * 1100;
  c.dns_responses = 300;
  c.dns_noerror = 280;
  c.dns_nxdomain = 20;
  c.dns_latency_count = 300;
  c.dns_latency_sum_us = 300 * 250;
  c.http_2xx = 900;
  c.http_3xx = 10;
  c.http_4xx = 40;
  c.http_5xx = 1;
  return c;
}

vs_service_counters last_service() {
  vs_service_counters c{};
  c.tcp_syn_in = 10;
  c.tcp_accepted = 9;
  c.tcp_refused = 1;
  c.tcp_rst_out = 4;
  c.handshake_count = 9;
  c.handshake_sum_us = 9 * 420;
  c.handshake_le_100us = 2;
  c.handshake_le_1ms = 8;  // p50 (the 5th) within 1 ms
  c.handshake_le_10ms = 8;
  c.handshake_le_100ms = 9;  // p99 (the 9th) within 100 ms
  c.handshake_le_1s = 9;
  c.tcp_connect_out = 3;
  c.tcp_connect_ok = 3;
  c.connect_count = 3;
  c.connect_sum_us = 3600;
  c.dns_responses = 20;
  c.dns_noerror = 18;
  c.dns_nxdomain = 2;
  c.dns_latency_count = 20;
  c.dns_latency_sum_us = 4000;
  c.http_2xx = 15;
  c.http_4xx = 2;
  return c;
}

TEST(TopDetail, ServiceHealthTables) {
  TopRow r = detail_row();
  r.service = total_service();
  r.service_last = last_service();
  r.service_interval_s = 2;
  const std::string title =
      "  services seen on its taps (last interval; total since counting started)";
  EXPECT_EQ(lines_from(detail_lines(r, {}), title, 16),
            (std::vector<std::string>{
                title, "  TCP to it      attempts accepted  refused no reply RSTs out",
                "    last 2.00s         10        9        1        0        4",
                "    total           1.20k    1.10k       80       20       95",
                "  handshake         timed      p50      p99     mean",
                "    last 2.00s          9    <=1ms  <=100ms    420us",
                "    total           1.10k    <=1ms   <=10ms    380us",
                "  TCP from it    connects       ok  refused    timed     mean",
                "    last 2.00s          3        3        0        3   1.20ms",
                "    total              40       39        1       39   1.10ms",
                "  DNS answers         all  NOERROR NXDOMAIN SERVFAIL  REFUSED    other     mean",
                "    last 2.00s         20       18        2        0        0        0    200us",
                "    total             300      280       20        0        0        0    250us",
                "  HTTP answers        1xx      2xx      3xx      4xx      5xx",
                "    last 2.00s          0       15        0        2        0",
                "    total               0      900       10       40        1"}));
}

TEST(TopDetail, ServiceHealthBeforeAnIntervalAndWhenIdle) {
  TopRow r = detail_row();
  r.service = total_service();
  std::vector<std::string> lines = detail_lines(r, {});
  // First sample: the interval's counts are unknown, the totals are there.
  auto http = lines_from(lines, "  HTTP answers        1xx      2xx      3xx      4xx      5xx", 3);
  EXPECT_EQ(http, (std::vector<std::string>{
                      "  HTTP answers        1xx      2xx      3xx      4xx      5xx",
                      "    last -              -        -        -        -        -",
                      "    total               0      900       10       40        1"}));
  // Nothing seen on its taps: one line instead of empty tables.
  r.service = {};
  lines = detail_lines(r, {});
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "  services: nothing seen on its taps yet (TCP to and from it, DNS, HTTP)"),
            lines.end());
  EXPECT_EQ(std::find(lines.begin(), lines.end(),
                      "  TCP to it      attempts accepted  refused no reply RSTs out"),
            lines.end());
  // A VM without a tap has no service figures at all.
  r.taps.clear();
  lines = detail_lines(r, {});
  for (const std::string& l : lines) EXPECT_EQ(l.find("services"), std::string::npos) << l;
}

TEST(TopDetail, OnlyTheVmsOwnEventsNewestFirst) {
  std::deque<VmEvent> events;
  events.push_back(event(VmEvent::Kind::kStart, "web", 111));
  events.push_back(event(VmEvent::Kind::kStart, "db", 222));
  events.push_back(event(VmEvent::Kind::kStart, "web-2", 333));  // a prefix is not a match
  VmEvent exit = event(VmEvent::Kind::kExit, "web", 111);
  exit.exit_known = true;
  exit.exit_code = 3;
  exit.lifetime_s = 125;
  events.push_back(exit);
  std::vector<std::string> lines = detail_lines(detail_row(), events);
  std::vector<std::string> ev;
  bool in_events = false;
  for (const std::string& l : lines) {
    if (l == "  recent events:") {
      in_events = true;
      continue;
    }
    if (in_events) ev.push_back(l);
  }
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(contains(ev[0], " web exit   pid 111 status 3 after 2m05s")) << ev[0];
  EXPECT_TRUE(contains(ev[1], " web start  pid 111 (qemu)")) << ev[1];
}

TEST(TopDetail, NoProcess) {
  TopRow r;
  r.vm = "orphan";
  std::vector<std::string> lines = detail_lines(r, {});
  EXPECT_EQ(lines[0], "VM orphan  launcher -  pid -");
  EXPECT_EQ(lines[1], "  no process (a tap nobody holds, or process metrics unavailable)");
}

TEST(TopEvents, EventLines) {
  VmEvent e = event(VmEvent::Kind::kExit, "web", 42);
  e.lifetime_s = 3600;
  EXPECT_TRUE(contains(event_line(e), " web exit   pid 42 after 1h00m")) << event_line(e);
  e.exit_known = true;
  e.signal = 9;
  EXPECT_TRUE(contains(event_line(e), " web exit   pid 42 killed by signal 9 after 1h00m"))
      << event_line(e);
}

}  // namespace
}  // namespace vmscope
