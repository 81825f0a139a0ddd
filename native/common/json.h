// A small JSON DOM parser and compact writer, written for the PIR
// `inference.json` reader. It exists (instead of a third-party library) so
// that every byte of hostile input goes through code we control: nesting depth
// and node count are bounded, numbers keep integer exactness, and doubles are
// written exactly the way Paddle's nlohmann::json writes them, which lets a
// parsed-and-rewritten program reproduce Paddle's file byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pif {

struct JsonValue {
  enum class Type : uint8_t { Null, Bool, Int, Double, String, Array, Object };

  Type type = Type::Null;
  bool b = false;
  int64_t i = 0;                 // Int: the exact value (JSON integers within int64 range)
  double d = 0;                  // Double: fractions, exponents and integers beyond int64
  std::string s;                 // String: decoded UTF-8 (may contain NUL)
  std::vector<JsonValue> items;  // Array
  std::vector<std::pair<std::string, JsonValue>> members;  // Object, file order,
                                                           // duplicates kept
  uint64_t offset = 0;  // byte offset of the value's first character

  bool is_null() const { return type == Type::Null; }
  bool is_bool() const { return type == Type::Bool; }
  bool is_int() const { return type == Type::Int; }
  bool is_number() const { return type == Type::Int || type == Type::Double; }
  bool is_string() const { return type == Type::String; }
  bool is_array() const { return type == Type::Array; }
  bool is_object() const { return type == Type::Object; }

  // Number as double (Int converted), 0 for non-numbers.
  double number() const { return type == Type::Int ? static_cast<double>(i) : d; }

  // First member with this key, or nullptr (also for non-objects).
  const JsonValue* find(const char* key) const;
  // Number of members with this key.
  size_t count(const char* key) const;
};

struct JsonParseOptions {
  uint32_t max_depth = 128;       // arrays/objects nested deeper are rejected
  uint64_t max_nodes = 1u << 26;  // total values created; bounds memory use
};

struct JsonParseError {
  std::string message;
  uint64_t offset = 0;  // byte offset where the problem was found
};

// Parses exactly one JSON text (RFC 8259; surrounding whitespace allowed).
// Strings must be valid UTF-8; \u escapes are decoded (surrogate pairs
// combined, lone surrogates rejected). Returns false and fills `err` on
// failure; `out` is then unspecified.
bool parse_json(const char* data, size_t size, const JsonParseOptions& opts, JsonValue* out,
                JsonParseError* err);

// Compact serialisation (no whitespace), members in stored order. Infinite
// doubles (the parser's result for out-of-range literals) are written as
// 1e999 / -1e999 so that the text re-parses to the same DOM.
void write_json(const JsonValue& v, std::string* out);

// A quoted JSON string with nlohmann::json's escaping (ensure_ascii off):
// `"` `\\` and control characters escaped, everything else passed through.
void write_json_string(const std::string& s, std::string* out);

// A double formatted exactly like nlohmann::json: Grisu2 round-trip digits
// (almost always the shortest); plain
// decimal notation when 1e-5 <= |v| < 1e15 (integral values keep ".0", e.g.
// "120.0"), otherwise `d.ddde-XX` with at least two exponent digits
// ("9.999999747378752e-06"); zero as "0.0" / "-0.0"; non-finite as "null".
void write_json_double(double v, std::string* out);

void write_json_int(int64_t v, std::string* out);

// Appends a JSON array: '[', each(x) for every x of `xs` separated by ',', ']'.
template <typename List, typename F>
void write_json_list(const List& xs, std::string* out, F each) {
  out->push_back('[');
  bool first = true;
  for (const auto& x : xs) {
    if (!first) out->push_back(',');
    first = false;
    each(x);
  }
  out->push_back(']');
}

}  // namespace pif
