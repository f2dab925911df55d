// Result<T>: a value or an Error that says what was attempted, on what, and why.
// GCC 12 has no std::expected; this is the small subset we use.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace vmscope {

struct Error {
  std::string message;  // "attach tc ingress on vmmtap3: Operation not permitted"
  int err = 0;          // positive errno when one applies, else 0

  // what: the attempted action and its object; err: positive errno.
  static Error from_errno(std::string_view what, int err) {
    return Error{fmt::format("{}: {}", what, std::strerror(err)), err};
  }
  static Error msg(std::string message) { return Error{std::move(message), 0}; }
  // Prefix context: "loading config: " + inner message.
  Error context(std::string_view what) const {
    return Error{fmt::format("{}: {}", what, message), err};
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace vmscope
