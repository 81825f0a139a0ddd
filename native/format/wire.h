// Bounded protobuf (proto2) wire-format reader and writer. Every read checks
// the remaining length first; errors carry the absolute byte offset in the
// file, so a corrupt model names the exact place that is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"

namespace pif {
namespace wire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

class Reader {
 public:
  // `base` is the absolute offset of data[0] within `file` (for messages).
  Reader(const uint8_t* data, size_t size, const std::string* file, uint64_t base = 0)
      : p_(data), begin_(data), end_(data + size), file_(file), base_(base) {}

  bool done() const { return p_ >= end_; }
  uint64_t offset() const { return base_ + static_cast<uint64_t>(p_ - begin_); }

  // Reads a field key; returns false at end of message.
  bool next(uint32_t* field, uint32_t* wire_type);
  uint64_t varint();
  uint32_t fixed32();
  uint64_t fixed64();
  // A length-delimited payload as a sub-reader positioned at its start.
  Reader sub();
  std::string bytes();
  void skip(uint32_t wire_type);

  // Typed helpers for the common cases, checking the wire type.
  int64_t int64_field(uint32_t wt);
  int32_t int32_field(uint32_t wt);
  bool bool_field(uint32_t wt);
  float float_field(uint32_t wt);
  double double_field(uint32_t wt);
  std::string string_field(uint32_t wt);
  // Repeated scalar fields arrive unpacked (one key per element) from Paddle;
  // packed encoding (wire type 2) is accepted too. Appends to *out.
  template <typename T, typename F>
  void repeated(uint32_t wt, uint32_t scalar_wt, T* out, F read_one);

  [[noreturn]] void fail(const std::string& what) const;
  void expect(uint32_t got, uint32_t want) const {
    if (got != want) fail("unexpected wire type " + std::to_string(got));
  }

 private:
  // Copies the next n bytes (a little-endian fixed32 / fixed64) to out.
  void take(void* out, size_t n, const char* what);

  const uint8_t* p_;
  const uint8_t* begin_;
  const uint8_t* end_;
  const std::string* file_;
  uint64_t base_;
};

template <typename T, typename F>
void Reader::repeated(uint32_t wt, uint32_t scalar_wt, T* out, F read_one) {
  if (wt == kLen) {
    Reader s = sub();
    while (!s.done()) out->push_back(read_one(s, scalar_wt));
  } else {
    out->push_back(read_one(*this, wt));
  }
}

// Writer: appends fields to a std::string.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void varint(uint64_t v);
  void key(uint32_t field, uint32_t wt) { varint((static_cast<uint64_t>(field) << 3) | wt); }
  void int_field(uint32_t field, int64_t v) {
    key(field, kVarint);
    varint(static_cast<uint64_t>(v));
  }
  void bool_field(uint32_t field, bool v) { int_field(field, v ? 1 : 0); }
  void float_field(uint32_t field, float v);
  void double_field(uint32_t field, double v);
  void bytes_field(uint32_t field, const std::string& v);

 private:
  void fixed_field(uint32_t field, uint32_t wt, const void* v, size_t n);

  std::string* out_;
};

}  // namespace wire
}  // namespace pif
