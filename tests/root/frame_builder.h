// Ethernet frames built layer by layer for packet tables run through BPF_PROG_TEST_RUN.
// Each layer writes its own type into the layer below it (ethertype, IP protocol, IPv6
// next header) and build() fills the IP length fields, so a table row reads as the stack
// it describes: Frame(kBroadcast).vlan(0x8100, 7).ipv4().udp().payload(20).build().
// Header-only so that the root test target needs no new source file.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "test_env.h"

namespace vmscope::test {

inline constexpr Mac kUnicast{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

class FrameBuilder {
 public:
  using Bytes = std::vector<uint8_t>;

  explicit FrameBuilder(Mac dst, Mac src = kVmMac) : f_(14, 0) {
    std::memcpy(&f_[0], dst.b, 6);
    std::memcpy(&f_[6], src.b, 6);
  }

  // An 802.1Q (0x8100) or 802.1ad (0x88a8) tag; the next layer sets the inner ethertype.
  FrameBuilder& vlan(uint16_t tpid, uint16_t vid) {
    set_type(tpid);
    size_t at = grow(4);
    put16(at, vid & 0x0fff);
    type_at_ = at + 2;
    return *this;
  }
  // Ends L2 with a non-IP ethertype (ARP, LLDP) or an 802.3 length field.
  FrameBuilder& ethertype(uint16_t type) {
    set_type(type);
    return *this;
  }

  // IPv4 with ihl 32-bit words (options are NOPs) and the flags/fragment-offset field
  // as sent (0x2000 = MF, low 13 bits = offset in 8-byte units). ver_ihl overrides byte 0.
  FrameBuilder& ipv4(uint8_t ihl = 5, uint16_t frag = 0x4000, int ver_ihl = -1) {
    set_type(0x0800);
    ip_at_ = grow(size_t{ihl < 5 ? 5u : ihl} * 4);
    ip_v6_ = false;
    f_[ip_at_] = ver_ihl >= 0 ? static_cast<uint8_t>(ver_ihl) : static_cast<uint8_t>(0x40 | ihl);
    put16(ip_at_ + 4, 0x1c46);
    put16(ip_at_ + 6, frag);
    f_[ip_at_ + 8] = 64;
    put32(ip_at_ + 12, 0x0a000002);
    put32(ip_at_ + 16, 0x0a000001);
    for (size_t i = ip_at_ + 20; i < f_.size(); ++i) f_[i] = 1;  // NOP options
    type_at_ = ip_at_ + 9;
    wide_type_ = false;
    return *this;
  }

  // IPv6; ver_tc overrides byte 0 (version in the high nibble).
  FrameBuilder& ipv6(int ver_tc = 0x60) {
    set_type(0x86dd);
    ip_at_ = grow(40);
    ip_v6_ = true;
    f_[ip_at_] = static_cast<uint8_t>(ver_tc);
    f_[ip_at_ + 7] = 64;  // hop limit
    f_[ip_at_ + 8] = 0xfe;
    f_[ip_at_ + 9] = 0x80;
    f_[ip_at_ + 23] = 2;  // fe80::2 -> fe80::1
    f_[ip_at_ + 24] = 0xfe;
    f_[ip_at_ + 25] = 0x80;
    f_[ip_at_ + 39] = 1;
    type_at_ = ip_at_ + 6;
    wide_type_ = false;
    return *this;
  }
  // Hop-by-hop (0), routing (43) or destination options (60) header of `units` 8-byte
  // units, padded with PadN.
  FrameBuilder& ipv6_ext(uint8_t type, size_t units = 1) {
    set_type(type);
    size_t at = grow(units * 8);
    f_[at + 1] = static_cast<uint8_t>(units - 1);
    f_[at + 2] = 1;  // PadN over the rest
    f_[at + 3] = static_cast<uint8_t>(units * 8 - 4);
    type_at_ = at;
    return *this;
  }
  // Authentication header (51) with a 12-byte ICV: its length counts 4-byte units, minus 2.
  FrameBuilder& ipv6_ah() {
    set_type(51);
    size_t at = grow(24);
    f_[at + 1] = 24 / 4 - 2;
    put32(at + 4, 0x00001000);  // SPI
    type_at_ = at;
    return *this;
  }
  // Fragment header (44): offset in 8-byte units, M flag.
  FrameBuilder& ipv6_fragment(uint16_t offset_units, bool more) {
    set_type(44);
    size_t at = grow(8);
    put16(at + 2, static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0)));
    put32(at + 4, 0xabcd0001);  // identification
    type_at_ = at;
    return *this;
  }

  // TCP header of 20 bytes (plus options up to hdr_len) with these flags.
  FrameBuilder& tcp(uint8_t flags, size_t hdr_len = 20) {
    set_type(6);
    size_t at = grow(hdr_len);
    put16(at, 43210);
    put16(at + 2, 80);
    put32(at + 4, 0x12345678);
    if (flags & 0x10) put32(at + 8, 0x9abcdef0);
    f_[at + 12] = static_cast<uint8_t>(hdr_len / 4 << 4);
    f_[at + 13] = flags;
    put16(at + 14, 64240);
    for (size_t i = at + 20; i < f_.size(); ++i) f_[i] = 1;  // NOP options
    l4_at_ = at;
    return *this;
  }
  FrameBuilder& udp() {
    set_type(17);
    size_t at = grow(8);
    put16(at, 53001);
    put16(at + 2, 53);
    udp_at_ = at;
    l4_at_ = at;
    return *this;
  }
  // The TCP or UDP ports (after tcp() or udp()).
  FrameBuilder& ports(uint16_t src, uint16_t dst) {
    put16(l4_at_, src);
    put16(l4_at_ + 2, dst);
    return *this;
  }
  // Source and destination IP addresses swapped: the frame goes the other way.
  FrameBuilder& swap_addrs() {
    const size_t a = ip_at_ + (ip_v6_ ? 8 : 12), n = ip_v6_ ? 16 : 4;
    std::swap_ranges(f_.begin() + static_cast<long>(a), f_.begin() + static_cast<long>(a + n),
                     f_.begin() + static_cast<long>(a + n));
    return *this;
  }
  // A DNS header (after udp()): id, flags (QR 0x8000, RCODE the low 4 bits), one question.
  FrameBuilder& dns(uint16_t id, uint16_t flags) {
    size_t at = grow(12);
    put16(at, id);
    put16(at + 2, flags);
    put16(at + 4, 1);
    return *this;
  }
  // Payload bytes as given (an HTTP status line, ...).
  FrameBuilder& text(std::string_view s) {
    size_t at = grow(s.size());
    if (!s.empty()) std::memcpy(&f_[at], s.data(), s.size());
    return *this;
  }
  // ICMP echo request, ICMPv6 over IPv6 (or another ICMPv6 type, as MLD's 143).
  FrameBuilder& icmp(uint8_t type = 0) {
    set_type(ip_v6_ ? 58 : 1);
    size_t at = grow(8);
    f_[at] = type ? type : (ip_v6_ ? 128 : 8);
    return *this;
  }
  // Another IP protocol (or an L4 header that a later fragment does not carry): the
  // protocol number, then `n` bytes of payload.
  FrameBuilder& proto(uint8_t p, size_t n) {
    set_type(p);
    grow(n);
    return *this;
  }

  FrameBuilder& payload(size_t n, uint8_t fill = 0x5a) {
    size_t at = grow(n);
    std::memset(&f_[at], fill, n);
    return *this;
  }
  // Ethernet padding to `len` bytes: after the IP datagram, outside its length.
  FrameBuilder& pad_to(size_t len) {
    ip_end_ = f_.size();
    if (f_.size() < len) f_.resize(len, 0);
    return *this;
  }
  // Sets one byte (e.g. one that a parser reading at the wrong offset would take as SYN).
  FrameBuilder& poke(size_t off, uint8_t v) {
    if (off >= f_.size()) f_.resize(off + 1, 0);
    f_[off] = v;
    return *this;
  }

  // The frame, cut to `len` bytes if it is longer (lengths still say the full size).
  Bytes build(size_t len = SIZE_MAX) const {
    Bytes f = f_;
    size_t end = ip_end_ ? ip_end_ : f.size();
    if (ip_at_ && ip_v6_) {
      put16(f, ip_at_ + 4, static_cast<uint16_t>(end - ip_at_ - 40));
    } else if (ip_at_) {
      put16(f, ip_at_ + 2, static_cast<uint16_t>(end - ip_at_));
      size_t hl = std::max<size_t>(5, f[ip_at_] & 0xf) * 4;
      uint32_t sum = 0;
      for (size_t i = 0; i < hl && ip_at_ + i + 1 < f.size(); i += 2)
        sum += (uint32_t{f[ip_at_ + i]} << 8) | f[ip_at_ + i + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      put16(f, ip_at_ + 10, static_cast<uint16_t>(~sum));
    }
    if (udp_at_) put16(f, udp_at_ + 4, static_cast<uint16_t>(end - udp_at_));
    if (len < f.size()) f.resize(len);
    return f;
  }

 private:
  size_t grow(size_t n) {
    size_t at = f_.size();
    f_.resize(at + n, 0);
    return at;
  }
  void set_type(uint16_t t) {
    if (wide_type_) {
      put16(type_at_, t);
    } else {
      f_[type_at_] = static_cast<uint8_t>(t);
    }
  }
  static void put16(Bytes& f, size_t off, uint16_t v) {
    f[off] = static_cast<uint8_t>(v >> 8);
    f[off + 1] = static_cast<uint8_t>(v);
  }
  void put16(size_t off, uint16_t v) { put16(f_, off, v); }
  void put32(size_t off, uint32_t v) {
    put16(off, static_cast<uint16_t>(v >> 16));
    put16(off + 2, static_cast<uint16_t>(v));
  }

  Bytes f_;
  size_t type_at_ = 12;    // where the next layer writes its type
  bool wide_type_ = true;  // ethertype (2 bytes) or IP protocol / next header (1 byte)
  size_t ip_at_ = 0;       // 0: no IP header
  bool ip_v6_ = false;
  size_t ip_end_ = 0;  // end of the IP datagram when padded; 0: the frame's end
  size_t udp_at_ = 0;
  size_t l4_at_ = 0;  // TCP or UDP header
};

}  // namespace vmscope::test
