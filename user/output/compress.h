// zlib for the outputs: gzip bodies for HTTP (Content-Encoding: gzip) and zlib-wrapped
// records for the on-disk spool. zlib, not zstd: it is already a dependency (libbpf links
// it) and InfluxDB 1.x only decodes gzip.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace vmscope {

// Appends data gzip-compressed (RFC 1952) to out; level 1: line protocol shrinks ~10x
// already and a 1.3 MB tick costs ~10 ms instead of ~40 ms at the default level.
Status gzip_into(std::string_view data, std::string& out, int level = 1);

// The whole of a gzip stream, as a server reads a Content-Encoding: gzip body (the tests'
// receivers); fails on anything but one complete stream.
Result<std::string> gunzip(std::string_view gz);

// zlib format (RFC 1950); the caller stores the original size for inflate_zlib.
Result<std::string> deflate_zlib(std::string_view data, int level = 1);
// Fails unless data inflates to exactly raw_size bytes.
Result<std::string> inflate_zlib(std::string_view data, size_t raw_size);

uint32_t crc32_of(std::string_view data);

}  // namespace vmscope
