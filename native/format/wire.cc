#include "format/wire.h"

#include <cstring>

namespace pif {
namespace wire {

void Reader::fail(const std::string& what) const {
  throw ModelError(code::kFormat, file_ ? *file_ : std::string(), static_cast<int64_t>(offset()),
                   "", what);
}

uint64_t Reader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p_ >= end_) fail("truncated varint");
    uint8_t b = *p_++;
    // The 10th byte may only contribute the top bit of a 64-bit value.
    if (shift == 63 && (b & 0x7e)) fail("varint overflows 64 bits");
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  fail("varint longer than 10 bytes");
}

bool Reader::next(uint32_t* field, uint32_t* wire_type) {
  if (p_ >= end_) return false;
  uint64_t k = varint();
  uint64_t f = k >> 3;
  if (f == 0 || f > 0x1fffffff) fail("invalid field number " + std::to_string(f));
  *field = static_cast<uint32_t>(f);
  *wire_type = static_cast<uint32_t>(k & 7);
  return true;
}

void Reader::take(void* out, size_t n, const char* what) {
  if (static_cast<size_t>(end_ - p_) < n) fail(std::string("truncated ") + what);
  std::memcpy(out, p_, n);
  p_ += n;
}

uint32_t Reader::fixed32() {
  uint32_t v;
  take(&v, 4, "fixed32");
  return v;
}

uint64_t Reader::fixed64() {
  uint64_t v;
  take(&v, 8, "fixed64");
  return v;
}

Reader Reader::sub() {
  uint64_t n = varint();
  if (n > static_cast<uint64_t>(end_ - p_)) {
    fail("length " + std::to_string(n) + " runs past the end of its message (" +
         std::to_string(end_ - p_) + " bytes left)");
  }
  Reader r(p_, static_cast<size_t>(n), file_, offset());
  p_ += n;
  return r;
}

std::string Reader::bytes() {
  Reader s = sub();
  return std::string(reinterpret_cast<const char*>(s.p_), static_cast<size_t>(s.end_ - s.p_));
}

void Reader::skip(uint32_t wt) {
  switch (wt) {
    case kVarint: varint(); return;
    case kFixed64: fixed64(); return;
    case kFixed32: fixed32(); return;
    case kLen: sub(); return;
    default: fail("unsupported wire type " + std::to_string(wt));
  }
}

int64_t Reader::int64_field(uint32_t wt) {
  expect(wt, kVarint);
  return static_cast<int64_t>(varint());
}

int32_t Reader::int32_field(uint32_t wt) {
  expect(wt, kVarint);
  // Negative int32 values are sign-extended 10-byte varints; truncation
  // recovers them.
  return static_cast<int32_t>(static_cast<uint32_t>(varint()));
}

bool Reader::bool_field(uint32_t wt) {
  expect(wt, kVarint);
  return varint() != 0;
}

float Reader::float_field(uint32_t wt) {
  expect(wt, kFixed32);
  float f;
  take(&f, 4, "fixed32");
  return f;
}

double Reader::double_field(uint32_t wt) {
  expect(wt, kFixed64);
  double d;
  take(&d, 8, "fixed64");
  return d;
}

std::string Reader::string_field(uint32_t wt) {
  expect(wt, kLen);
  return bytes();
}

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(v));
}

void Writer::fixed_field(uint32_t field, uint32_t wt, const void* v, size_t n) {
  key(field, wt);
  out_->append(static_cast<const char*>(v), n);
}

void Writer::float_field(uint32_t field, float v) { fixed_field(field, kFixed32, &v, 4); }

void Writer::double_field(uint32_t field, double v) { fixed_field(field, kFixed64, &v, 8); }

void Writer::bytes_field(uint32_t field, const std::string& v) {
  key(field, kLen);
  varint(v.size());
  out_->append(v);
}

}  // namespace wire
}  // namespace pif
