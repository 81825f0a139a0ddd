// Our JSON parser and writer (native/common/json.h), which the PIR reader and writer rest on:
// Python-exact double formatting, accepted and rejected documents, limits, and round trips.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

#include "common/json.h"
#include "tests/harness.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {

PIF_TEST(json, write_double) {
  struct {
    double v;
    const char* s;
  } cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1.0, "1.0"},
      {0.5, "0.5"},
      {120.0, "120.0"},
      {static_cast<double>(0.9f), "0.8999999761581421"},
      {static_cast<double>(1e-5f), "9.999999747378752e-06"},
      {static_cast<double>(1e-6f), "9.999999974752427e-07"},
      {static_cast<double>(0.1666667f), "0.16666670143604279"},
      {1e-4, "0.0001"},
      {1e-5, "1e-05"},
      {1e15, "1e+15"},
      {1e14, "100000000000000.0"},
      {123456789012345.6, "123456789012345.6"},
      {1.5e300, "1.5e+300"},
      {5e-324, "5e-324"},
      {-2.5, "-2.5"},
      {static_cast<double>(234.8544f), "234.85440063476563"},  // Grisu2, not shortest
      {-3.5561693938148423e-26, "-3.5561693938148423e-26"},
  };
  for (const auto& c : cases) {
    std::string s;
    write_json_double(c.v, &s);
    if (s != c.s) FAILF(std::string("double ") + c.s + " written as " + s);
  }
}

PIF_TEST(json, documents) {
  struct {
    const char* in;
    bool ok;
  } docs[] = {
      {"{\"a\":[1,-2,3.5e2,\"\\u00e9\\ud83d\\ude00\"],\"a\":null}", true},
      {"9223372036854775807", true},
      {"-9223372036854775808", true},
      {"1e999", true},
      {"[1,]", false},
      {"\"\\ud800\"", false},
      {"\"\xc0\xaf\"", false},
      {"\"\xed\xa0\x80\"", false},
      {"01", false},
      {"[\"\x01\"]", false},
      {"{\"a\" 1}", false},
      {"tru", false},
      {"", false},
  };
  for (const auto& d : docs) {
    JsonValue v;
    JsonParseError err;
    JsonParseOptions o;
    bool ok = parse_json(d.in, std::strlen(d.in), o, &v, &err);
    if (ok != d.ok)
      FAILF(std::string("json parse of ") + d.in + ": expected " + (d.ok ? "ok" : "error"));
    if (ok) {
      std::string w;
      write_json(v, &w);
      JsonValue v2;
      if (!parse_json(w.data(), w.size(), o, &v2, &err)) FAILF("json rewrite does not parse: " + w);
      std::string w2;
      write_json(v2, &w2);
      if (w != w2) FAILF("json rewrite not stable: " + w);
    }
  }
  {
    JsonValue v;
    JsonParseError err;
    JsonParseOptions o;
    const char* s = "[9223372036854775807,-9223372036854775808,9223372036854775808]";
    if (!parse_json(s, std::strlen(s), o, &v, &err) || !v.items[0].is_int() ||
        v.items[0].i != INT64_MAX || !v.items[1].is_int() || v.items[1].i != INT64_MIN ||
        v.items[2].is_int()) {
      FAILF("int64 limits");
    }
    std::string deep(200, '[');
    deep += std::string(200, ']');
    o.max_depth = 128;
    if (parse_json(deep.data(), deep.size(), o, &v, &err)) FAILF("depth limit not enforced");
    const char* u = "\"\\u00e9\\ud83d\\ude00\"";
    if (!parse_json(u, std::strlen(u), o, &v, &err) || v.s != "\xc3\xa9\xf0\x9f\x98\x80") {
      FAILF("unicode escapes");
    }
  }
}

// Random doubles must round-trip through the formatter.
PIF_TEST(json, double_round_trip) {
  std::mt19937_64 rng(7);
  for (int k = 0; k < 200000; ++k) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    std::string s;
    write_json_double(d, &s);
    JsonValue v;
    JsonParseError err;
    if (!parse_json(s.data(), s.size(), JsonParseOptions(), &v, &err) ||
        std::memcmp(&v.d, &d, sizeof d) != 0) {
      FAILF("double does not round-trip: " + s);
      break;
    }
  }
}

}  // namespace pif::test
