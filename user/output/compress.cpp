#include "output/compress.h"

#include <zlib.h>

#include <climits>

namespace vmscope {
namespace {

// One deflate stream over data into out (appended); window_bits picks the wrapper.
Status deflate_into(std::string_view data, std::string& out, int level, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return Error::msg("deflateInit2 failed");
  const uLong bound = deflateBound(&z, static_cast<uLong>(data.size()));
  const size_t start = out.size();
  out.resize(start + bound);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data() + start);
  z.avail_out = static_cast<uInt>(bound);
  const int rc = deflate(&z, Z_FINISH);  // one call: avail_out is deflateBound
  out.resize(start + z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return Error::msg(fmt::format("deflate: {}", z.msg ? z.msg : "failed"));
  return {};
}

}  // namespace

Status gzip_into(std::string_view data, std::string& out, int level) {
  if (data.size() > UINT_MAX) return Error::msg("gzip: input over 4 GiB");
  return deflate_into(data, out, level, 15 + 16);  // +16: gzip header and trailer
}

Result<std::string> gunzip(std::string_view gz) {
  if (gz.size() > UINT_MAX) return Error::msg("gunzip: input over 4 GiB");
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return Error::msg("inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char buf[65536];
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  const std::string why = rc != Z_STREAM_END ? (z.msg ? z.msg : zError(rc))
                          : z.avail_in != 0  ? "trailing bytes"
                                             : "";
  inflateEnd(&z);
  if (!why.empty()) return Error::msg(fmt::format("gunzip: {}", why));
  return out;
}

Result<std::string> deflate_zlib(std::string_view data, int level) {
  if (data.size() > UINT_MAX) return Error::msg("deflate: input over 4 GiB");
  std::string out;
  if (Status st = deflate_into(data, out, level, 15); !st) return st.error();
  return out;
}

Result<std::string> inflate_zlib(std::string_view data, size_t raw_size) {
  if (data.size() > UINT_MAX || raw_size > UINT_MAX) return Error::msg("inflate: over 4 GiB");
  std::string out(raw_size, '\0');
  uLongf len = static_cast<uLongf>(raw_size);
  const int rc =
      uncompress(reinterpret_cast<Bytef*>(out.data()), &len,
                 reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()));
  if (rc != Z_OK) return Error::msg(fmt::format("inflate: {}", zError(rc)));
  if (len != raw_size)
    return Error::msg(fmt::format("inflate: {} bytes, header says {}", len, raw_size));
  return out;
}

uint32_t crc32_of(std::string_view data) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

}  // namespace vmscope
