#include "attach/kept_state.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/dir.h"

namespace vmscope {
namespace {

// Bump when a kept map changes meaning without its counter names or sizes changing (say,
// if_slot's "slot + 1" encoding, or vs_l4's order); everything else is in the fingerprint,
// and a changed layout of the same revision is migrated field by field.
// 2: the carry maps and the field description in the record.
constexpr uint32_t kKeptRevision = 2;

#define VS_KEPT_NAME_(field) #field ","
#define VS_KEPT_NAME_N_(field, n) #field "[" #n "],"
constexpr std::string_view kCounterNames = "net:" VS_NET_COUNTERS(
    VS_KEPT_NAME_, VS_KEPT_NAME_N_) "service:" VS_SERVICE_COUNTERS(VS_KEPT_NAME_);
#undef VS_KEPT_NAME_
#undef VS_KEPT_NAME_N_

constexpr uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
constexpr uint64_t mix(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  return h;
}

// Which structs the kept maps hold: the counter lists by name (a renamed or reordered
// counter changes it even where sizes stay), the struct sizes and the table bounds.
constexpr uint64_t layout_fingerprint(uint32_t revision) {
  return mix(mix(mix(mix(mix(mix(fnv1a(kCounterNames), revision), sizeof(vs_dev_counters)),
                         sizeof(vs_service_counters)),
                     VS_IFINDEX_DIRECT_MAX),
                 VS_SERVICE_PENDING_MAX),
             sizeof(vs_pending_key));
}
constexpr uint64_t kLayoutFingerprint = layout_fingerprint(kKeptRevision);

// The "layout" pin: an array of one of these. Revision 1 wrote only the first 16 bytes.
struct LayoutRecord {
  uint64_t fingerprint;
  uint32_t slots;
  uint32_t revision;
  char fields[4096 - 16];  // describe_kept_fields(), NUL-terminated
};
constexpr uint32_t kRevision1RecordBytes = 16;

constexpr const char* kLayoutPin = "layout";

std::string pin_of(const std::string& dir, const char* name) {
  return dir + "/" + name;
}

void unpin_kept_maps(const std::string& dir) {
  unlink(pin_of(dir, kLayoutPin).c_str());  // first: what remains is not adoptable
  for (const char* name : kKeptMapNames) unlink(pin_of(dir, name).c_str());
  for (const char* name : kCarryMapNames) unlink(pin_of(dir, name).c_str());
}

// The record (zeroed beyond what the pin holds); a zeroed one for a pin of another form.
std::optional<LayoutRecord> read_layout(const std::string& dir) {
  UniqueFd fd(bpf_obj_get(pin_of(dir, kLayoutPin).c_str()));
  if (!fd.valid()) return std::nullopt;
  uint32_t key = 0;
  LayoutRecord r{};
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 ||
      (info.value_size != sizeof(r) && info.value_size != kRevision1RecordBytes) ||
      bpf_map_lookup_elem(fd.get(), &key, &r) != 0)
    return LayoutRecord{};  // a record of another form: another layout
  r.fields[sizeof(r.fields) - 1] = '\0';
  return r;
}

uint32_t value_size_of(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.value_size : 0;
}

// Why maps of the record's layout cannot be migrated into this build's; empty if they can.
std::string unmigratable(const LayoutRecord& r, const KeptMaps& old) {
  if (r.revision != kKeptRevision)
    return fmt::format("they are of revision {} (this build reads {})", r.revision, kKeptRevision);
  auto fields = parse_kept_fields(r.fields);
  if (!fields) return fields.error().message;
  auto conv = KeptFieldConverter::from(*fields);
  if (!conv) return conv.error().message;
  if (value_size_of(old.fd("net_stats")) != conv->old_dev_words() * 8 ||
      value_size_of(old.fd("service_stats")) != conv->old_service_words() * 8)
    return "their maps do not hold the structs their record describes";
  return {};
}

}  // namespace

int KeptMaps::fd(std::string_view name) const {
  for (const auto& [n, f] : fds)
    if (n == name) return f.get();
  return -1;
}

const KeptFieldConverter& this_layout() {
  static const KeptFieldConverter identity = [] {
    auto fields = parse_kept_fields(describe_kept_fields());
    auto conv = fields ? KeptFieldConverter::from(*fields) : fields.error();
    if (!conv) std::abort();  // this build's own description: a unit test holds it valid
    return std::move(*conv);
  }();
  return identity;
}

KeptMaps open_kept_maps(const std::string& dir) {
  KeptMaps kept;
  auto layout = read_layout(dir);
  if (!layout) {
    unpin_kept_maps(dir);  // pins of a run that stopped before it wrote its record
    return kept;
  }
  auto drop = [&](const std::string& why) -> KeptMaps {
    spdlog::warn(
        "network counters kept by the previous vmscope run ({}) cannot be continued: {}; vm_net "
        "and bridge counters restart from zero",
        dir, why);
    unpin_kept_maps(dir);
    KeptMaps reset;
    reset.reset = true;
    return reset;
  };
  const bool same = layout->fingerprint == kLayoutFingerprint;
  // Revision 1 kept the same maps, without carry maps: adopted, and given carry maps.
  const bool revision1 = layout->revision == 1 && layout->fingerprint == layout_fingerprint(1);
  for (const char* name : kKeptMapNames) {
    UniqueFd fd(bpf_obj_get(pin_of(dir, name).c_str()));
    if (!fd.valid()) return drop(fmt::format("open {}: {}", pin_of(dir, name), strerror(errno)));
    kept.fds.emplace_back(name, std::move(fd));
  }
  kept.slots = layout->slots;
  if (revision1) {
    kept.adopted = true;
    return kept;
  }
  if (!same) {
    if (std::string why = unmigratable(*layout, kept); !why.empty())
      return drop("they hold the structs of another vmscope build, and " + why);
  }
  UniqueFd* carry[] = {&kept.net_carry, &kept.service_carry};
  for (size_t i = 0; i < std::size(kCarryMapNames); ++i) {
    carry[i]->reset(bpf_obj_get(pin_of(dir, kCarryMapNames[i]).c_str()));
    if (!carry[i]->valid())
      return drop(fmt::format("open {}: {}", pin_of(dir, kCarryMapNames[i]), strerror(errno)));
  }
  if (same) {
    kept.adopted = true;
    return kept;
  }
  kept.old_fields = *parse_kept_fields(layout->fields);
  kept.migrate = true;  // unpinned by pin_kept_maps, once the new maps are there
  return kept;
}

Result<std::pair<UniqueFd, UniqueFd>> create_carry_maps(uint32_t slots) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  UniqueFd net(bpf_map_create(BPF_MAP_TYPE_HASH, "vs_net_carry", sizeof(uint32_t),
                              sizeof(vs_dev_counters), slots, &opts));
  if (!net.valid()) return Error::from_errno("create the net_carry map", errno);
  UniqueFd service(bpf_map_create(BPF_MAP_TYPE_HASH, "vs_svc_carry", sizeof(uint32_t),
                                  sizeof(vs_service_counters), slots, &opts));
  if (!service.valid()) return Error::from_errno("create the service_carry map", errno);
  return std::pair(std::move(net), std::move(service));
}

Result<CarryTable> read_carry(int net_carry, int service_carry, const KeptFieldConverter& from) {
  CarryTable out;
  std::vector<uint64_t> raw(std::max(from.old_dev_words(), from.old_service_words()) + 1);
  auto each = [&](int fd, size_t words, const char* what, auto&& put) -> Status {
    if (value_size_of(fd) != words * 8)
      return Error::msg(fmt::format("read {}: its values are not of the kept layout", what));
    uint32_t key = 0, prev = 0;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &prev, &key) == 0) {
      if (bpf_map_lookup_elem(fd, &key, raw.data()) == 0) put(key);
      prev = key;
      first = false;
    }
    return {};
  };
  auto st = each(net_carry, from.old_dev_words(), "net_carry",
                 [&](uint32_t slot) { from.convert(raw.data(), out[slot].net); });
  if (!st) return st.error();
  st = each(service_carry, from.old_service_words(), "service_carry",
            [&](uint32_t slot) { from.convert(raw.data(), out[slot].service); });
  if (!st) return st.error();
  return out;
}

Status reuse_kept_maps(bpf_object* obj, const KeptMaps& kept) {
  // (Only adopted maps: the carry maps are not the object's and need no reuse.)
  for (const auto& [name, fd] : kept.fds) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (!map) return Error::msg("adopt kept map " + name + ": not in this build's object");
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
      return Error::from_errno("inspect kept map " + name, errno);
    if (info.type != static_cast<uint32_t>(bpf_map__type(map)) ||
        info.key_size != bpf_map__key_size(map) || info.value_size != bpf_map__value_size(map) ||
        info.max_entries != bpf_map__max_entries(map))
      return Error::msg(fmt::format(
          "adopt kept map {}: it has type {}, key {} B, value {} B, {} entries where this build "
          "has {}, {} B, {} B, {}",
          name, info.type, info.key_size, info.value_size, info.max_entries,
          static_cast<int>(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
          bpf_map__max_entries(map)));
  }
  for (const auto& [name, fd] : kept.fds) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
    if (int err = bpf_map__reuse_fd(map, fd.get()); err)
      return Error::from_errno("adopt kept map " + name, -err);
  }
  return {};
}

Status pin_kept_maps(bpf_object* obj, int net_carry, int service_carry, const std::string& dir,
                     uint32_t slots) {
  unpin_kept_maps(dir);
  for (const char* name : kKeptMapNames) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name);
    if (!map) return Error::msg(fmt::format("keep map {}: not in the object", name));
    if (int err = bpf_map__pin(map, pin_of(dir, name).c_str()); err) {
      unpin_kept_maps(dir);
      return Error::from_errno("pin " + pin_of(dir, name), -err);
    }
  }
  const int carry[] = {net_carry, service_carry};
  for (size_t i = 0; i < std::size(kCarryMapNames); ++i) {
    if (bpf_obj_pin(carry[i], pin_of(dir, kCarryMapNames[i]).c_str()) != 0) {
      int err = errno;
      unpin_kept_maps(dir);
      return Error::from_errno("pin " + pin_of(dir, kCarryMapNames[i]), err);
    }
  }
  UniqueFd layout(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vs_kept_layout", sizeof(uint32_t),
                                 sizeof(LayoutRecord), 1, nullptr));
  const uint32_t key = 0;
  LayoutRecord r{kLayoutFingerprint, slots, kKeptRevision, {}};
  const std::string fields = describe_kept_fields();
  if (fields.size() >= sizeof(r.fields))
    return Error::msg("keep the field layout: its description outgrew the layout record");
  std::memcpy(r.fields, fields.data(), fields.size());
  if (!layout.valid() || bpf_map_update_elem(layout.get(), &key, &r, BPF_ANY) != 0 ||
      bpf_obj_pin(layout.get(), pin_of(dir, kLayoutPin).c_str()) != 0) {
    int err = errno;
    unpin_kept_maps(dir);
    return Error::from_errno("pin " + pin_of(dir, kLayoutPin), err);
  }
  return {};
}

Result<std::vector<std::pair<int, uint32_t>>> read_kept_slots(int if_slot_fd, int if_slot_far_fd) {
  std::vector<std::pair<int, uint32_t>> out;
  // The array in batches (one syscall per 4096 entries, not one per ifindex).
  constexpr uint32_t kBatch = 4096;
  std::vector<uint32_t> keys(kBatch), values(kBatch);
  uint32_t in = 0, next = 0;
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    int err = bpf_map_lookup_batch(if_slot_fd, first ? nullptr : &in, &next, keys.data(),
                                   values.data(), &count, nullptr);
    if (err && errno != ENOENT) return Error::from_errno("read kept if_slot", errno);
    for (uint32_t i = 0; i < count; ++i)
      if (values[i] != 0) out.emplace_back(static_cast<int>(keys[i]), values[i] - 1);
    if (err) break;  // ENOENT: that was the last batch
    in = next;
    first = false;
  }
  uint32_t key = 0, prev = 0;
  bool have_prev = false;
  while (bpf_map_get_next_key(if_slot_far_fd, have_prev ? &prev : nullptr, &key) == 0) {
    uint32_t value = 0;
    if (bpf_map_lookup_elem(if_slot_far_fd, &key, &value) == 0 && value != 0)
      out.emplace_back(static_cast<int>(key), value - 1);
    prev = key;
    have_prev = true;
  }
  return out;
}

std::string tcx_pin_path(const std::string& dir, int ifindex, vs_dir d) {
  return fmt::format("{}/tcx-{}-{}", dir, ifindex, d == VS_DIR_INGRESS ? "ingress" : "egress");
}

int ifindex_of_tcx_pin(const std::string& name) {
  int ifindex = 0;
  char dir[16] = {};
  if (std::sscanf(name.c_str(), "tcx-%d-%15s", &ifindex, dir) != 2) return 0;
  return ifindex;
}

void remove_pin_dir(const std::string& dir) {
  {
    DirHandle d(dir);
    while (const dirent* e = d.next()) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      unlink((dir + "/" + std::string(name)).c_str());
    }
  }
  rmdir(dir.c_str());
}

}  // namespace vmscope
