#include "attach/kept_state.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/dir.h"

namespace vmscope {
namespace {

// Bump when a kept map changes meaning without its counter names or sizes changing (say,
// if_slot's "slot + 1" encoding); everything else is in the fingerprint by itself.
constexpr uint32_t kKeptRevision = 1;

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
constexpr uint64_t kLayoutFingerprint =
    mix(mix(mix(mix(mix(mix(fnv1a(kCounterNames), kKeptRevision), sizeof(vs_dev_counters)),
                    sizeof(vs_service_counters)),
                VS_IFINDEX_DIRECT_MAX),
            VS_SERVICE_PENDING_MAX),
        sizeof(vs_pending_key));

// The "layout" pin: an array of one of these.
struct LayoutRecord {
  uint64_t fingerprint;
  uint32_t slots;
  uint32_t revision;
};

constexpr const char* kLayoutPin = "layout";

std::string pin_of(const std::string& dir, const char* name) {
  return dir + "/" + name;
}

void unpin_kept_maps(const std::string& dir) {
  unlink(pin_of(dir, kLayoutPin).c_str());  // first: what remains is not adoptable
  for (const char* name : kKeptMapNames) unlink(pin_of(dir, name).c_str());
}

std::optional<LayoutRecord> read_layout(const std::string& dir) {
  UniqueFd fd(bpf_obj_get(pin_of(dir, kLayoutPin).c_str()));
  if (!fd.valid()) return std::nullopt;
  uint32_t key = 0;
  LayoutRecord r{};
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || info.value_size != sizeof(r) ||
      bpf_map_lookup_elem(fd.get(), &key, &r) != 0)
    return LayoutRecord{};  // a record of another form: another layout
  return r;
}

}  // namespace

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
  if (layout->fingerprint != kLayoutFingerprint)
    return drop("they hold the structs of another vmscope build");
  for (const char* name : kKeptMapNames) {
    UniqueFd fd(bpf_obj_get(pin_of(dir, name).c_str()));
    if (!fd.valid()) return drop(fmt::format("open {}: {}", pin_of(dir, name), strerror(errno)));
    kept.fds.emplace_back(name, std::move(fd));
  }
  kept.adopted = true;
  kept.slots = layout->slots;
  return kept;
}

Status reuse_kept_maps(bpf_object* obj, const KeptMaps& kept) {
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

Status pin_kept_maps(bpf_object* obj, const std::string& dir, uint32_t slots) {
  unpin_kept_maps(dir);
  for (const char* name : kKeptMapNames) {
    bpf_map* map = bpf_object__find_map_by_name(obj, name);
    if (!map) return Error::msg(fmt::format("keep map {}: not in the object", name));
    if (int err = bpf_map__pin(map, pin_of(dir, name).c_str()); err) {
      unpin_kept_maps(dir);
      return Error::from_errno("pin " + pin_of(dir, name), -err);
    }
  }
  UniqueFd layout(bpf_map_create(BPF_MAP_TYPE_ARRAY, "vs_kept_layout", sizeof(uint32_t),
                                 sizeof(LayoutRecord), 1, nullptr));
  const uint32_t key = 0;
  const LayoutRecord r{kLayoutFingerprint, slots, kKeptRevision};
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
