#include "common/json.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

namespace pif {

const JsonValue* JsonValue::find(const char* key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& m : members) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

size_t JsonValue::count(const char* key) const {
  size_t n = 0;
  if (type != Type::Object) return 0;
  for (const auto& m : members) {
    if (m.first == key) ++n;
  }
  return n;
}

namespace {

// Recursive descent; recursion depth is bounded by opts.max_depth (checked
// before descending), so the stack use is bounded regardless of input.
class Parser {
 public:
  Parser(const char* data, size_t size, const JsonParseOptions& opts)
      : p_(reinterpret_cast<const unsigned char*>(data)), n_(size), opts_(opts) {}

  bool run(JsonValue* out, JsonParseError* err) {
    skip_ws();
    if (!parse_value(out, 0)) return fail_out(err);
    skip_ws();
    if (pos_ != n_) {
      set_error("unexpected data after the JSON value", pos_);
      return fail_out(err);
    }
    return true;
  }

 private:
  bool fail_out(JsonParseError* err) {
    if (err) {
      err->message = msg_;
      err->offset = err_pos_;
    }
    return false;
  }

  bool set_error(const char* msg, size_t at) {
    if (msg_.empty()) {
      msg_ = msg;
      err_pos_ = at;
    }
    return false;
  }

  void skip_ws() {
    while (pos_ < n_) {
      unsigned char c = p_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool count_node() {
    if (++nodes_ > opts_.max_nodes) return set_error("too many JSON values", pos_);
    return true;
  }

  bool literal(const char* word) {
    size_t len = std::strlen(word);
    if (n_ - pos_ < len || std::memcmp(p_ + pos_, word, len) != 0) {
      return set_error("invalid literal", pos_);
    }
    pos_ += len;
    return true;
  }

  bool parse_value(JsonValue* v, uint32_t depth) {
    if (!count_node()) return false;
    if (pos_ >= n_) return set_error("unexpected end of input", pos_);
    v->offset = pos_;
    unsigned char c = p_[pos_];
    switch (c) {
      case '{': return parse_object(v, depth);
      case '[': return parse_array(v, depth);
      case '"': v->type = JsonValue::Type::String; return parse_string(&v->s);
      case 't':
        v->type = JsonValue::Type::Bool;
        v->b = true;
        return literal("true");
      case 'f':
        v->type = JsonValue::Type::Bool;
        v->b = false;
        return literal("false");
      case 'n': v->type = JsonValue::Type::Null; return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(v);
        return set_error("unexpected character", pos_);
    }
  }

  bool parse_array(JsonValue* v, uint32_t depth) {
    if (depth + 1 > opts_.max_depth) return set_error("JSON nesting too deep", pos_);
    v->type = JsonValue::Type::Array;
    if (open_container(']')) return true;
    for (;;) {
      v->items.emplace_back();
      if (!parse_value(&v->items.back(), depth + 1)) return false;
      bool more = false;
      if (!after_element(']', "unterminated array", "expected ',' or ']' in array", &more))
        return false;
      if (!more) return true;
    }
  }

  bool parse_object(JsonValue* v, uint32_t depth) {
    if (depth + 1 > opts_.max_depth) return set_error("JSON nesting too deep", pos_);
    v->type = JsonValue::Type::Object;
    if (open_container('}')) return true;
    for (;;) {
      if (pos_ >= n_ || p_[pos_] != '"') return set_error("expected a string key", pos_);
      v->members.emplace_back();
      auto& m = v->members.back();
      if (!parse_string(&m.first)) return false;
      skip_ws();
      if (pos_ >= n_ || p_[pos_] != ':') return set_error("expected ':' after key", pos_);
      ++pos_;
      skip_ws();
      if (!parse_value(&m.second, depth + 1)) return false;
      bool more = false;
      if (!after_element('}', "unterminated object", "expected ',' or '}' in object", &more))
        return false;
      if (!more) return true;
    }
  }

  // Steps over the opening '[' / '{' and whitespace; true (with the closer consumed) when the
  // container is empty.
  bool open_container(char close) {
    ++pos_;
    skip_ws();
    if (pos_ < n_ && p_[pos_] == close) {
      ++pos_;
      return true;
    }
    return false;
  }

  // After an element of an array or object: a ',' (*more, whitespace skipped) or the closer.
  bool after_element(char close, const char* unterminated, const char* expected, bool* more) {
    skip_ws();
    if (pos_ >= n_) return set_error(unterminated, pos_);
    if (p_[pos_] == ',') {
      ++pos_;
      skip_ws();
      *more = true;
      return true;
    }
    if (p_[pos_] == close) {
      ++pos_;
      *more = false;
      return true;
    }
    return set_error(expected, pos_);
  }

  static void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool hex4(uint32_t* out) {
    if (n_ - pos_ < 4) return set_error("truncated \\u escape", pos_);
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      unsigned char c = p_[pos_ + k];
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return set_error("invalid hex digit in \\u escape", pos_ + k);
      }
      v = (v << 4) | d;
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  // Length of the valid UTF-8 sequence starting at pos (RFC 3629: no
  // overlongs, no surrogates, nothing above U+10FFFF), or 0 if invalid.
  size_t utf8_len(size_t at) const {
    unsigned char c = p_[at];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the 2nd byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return 0;
    }
    if (n_ - at < len) return 0;
    unsigned char c1 = p_[at + 1];
    if (c1 < lo || c1 > hi) return 0;
    for (size_t k = 2; k < len; ++k) {
      unsigned char ck = p_[at + k];
      if (ck < 0x80 || ck > 0xBF) return 0;
    }
    return len;
  }

  bool parse_string(std::string* out) {
    size_t start = pos_;
    ++pos_;  // opening quote
    for (;;) {
      // Copy a run of plain ASCII in one go.
      size_t run = pos_;
      while (run < n_) {
        unsigned char c = p_[run];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++run;
      }
      out->append(reinterpret_cast<const char*>(p_ + pos_), run - pos_);
      pos_ = run;
      if (pos_ >= n_) return set_error("unterminated string", start);
      unsigned char c = p_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return set_error("control character in string", pos_);
      if (c >= 0x80) {
        size_t len = utf8_len(pos_);
        if (len == 0) return set_error("invalid UTF-8 in string", pos_);
        out->append(reinterpret_cast<const char*>(p_ + pos_), len);
        pos_ += len;
        continue;
      }
      // Backslash escape.
      size_t esc = pos_;
      ++pos_;
      if (pos_ >= n_) return set_error("unterminated string", start);
      c = p_[pos_++];
      switch (c) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return set_error("lone low surrogate", esc);
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (n_ - pos_ < 2 || p_[pos_] != '\\' || p_[pos_ + 1] != 'u') {
              return set_error("high surrogate without low surrogate", esc);
            }
            pos_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) {
              return set_error("high surrogate without low surrogate", esc);
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(cp, out);
          break;
        }
        default: return set_error("invalid escape in string", esc);
      }
    }
  }

  bool parse_number(JsonValue* v) {
    size_t start = pos_;
    size_t q = pos_;
    bool neg = false;
    if (p_[q] == '-') {
      neg = true;
      ++q;
    }
    if (q >= n_ || p_[q] < '0' || p_[q] > '9') return set_error("invalid number", start);
    if (p_[q] == '0') {
      ++q;
    } else {
      while (q < n_ && p_[q] >= '0' && p_[q] <= '9') ++q;
    }
    size_t int_end = q;
    bool integral = true;
    if (q < n_ && p_[q] == '.') {
      integral = false;
      ++q;
      if (q >= n_ || p_[q] < '0' || p_[q] > '9') return set_error("invalid number", start);
      while (q < n_ && p_[q] >= '0' && p_[q] <= '9') ++q;
    }
    size_t exp_start = 0;
    if (q < n_ && (p_[q] == 'e' || p_[q] == 'E')) {
      integral = false;
      exp_start = q;
      ++q;
      if (q < n_ && (p_[q] == '+' || p_[q] == '-')) ++q;
      if (q >= n_ || p_[q] < '0' || p_[q] > '9') return set_error("invalid number", start);
      while (q < n_ && p_[q] >= '0' && p_[q] <= '9') ++q;
    }
    pos_ = q;
    const char* first = reinterpret_cast<const char*>(p_ + start);
    const char* last = reinterpret_cast<const char*>(p_ + q);
    if (integral) {
      int64_t iv = 0;
      auto r = std::from_chars(first, last, iv);
      if (r.ec == std::errc() && r.ptr == last) {
        v->type = JsonValue::Type::Int;
        v->i = iv;
        return true;
      }
      // Out of int64 range: keep it as a double, like strtod would.
    }
    double dv = 0;
    auto r = std::from_chars(first, last, dv, std::chars_format::general);
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars leaves the value untouched on range errors; strtod gives
      // +-HUGE_VAL on overflow and (signed) zero on underflow. Decide which by
      // the decimal exponent of the first significant digit.
      int64_t e10 = 0;
      size_t digits_start = start + (neg ? 1 : 0);
      size_t k = digits_start;
      while (k < int_end && p_[k] == '0') ++k;
      if (k < int_end) {
        e10 = static_cast<int64_t>(int_end - k) - 1;
      } else {
        // Integer part is zero: count leading zeros of the fraction.
        size_t f = int_end + 1;
        size_t stop = exp_start ? exp_start : q;
        int64_t z = 0;
        while (f < stop && p_[f] == '0') {
          ++f;
          ++z;
        }
        e10 = -(z + 1);
      }
      if (exp_start) {
        // Saturating parse of the exponent (it may have thousands of digits).
        size_t ek = exp_start + 1;
        bool eneg = false;
        if (p_[ek] == '+' || p_[ek] == '-') eneg = p_[ek++] == '-';
        int64_t ev = 0;
        for (; ek < q; ++ek) {
          if (ev < 1000000000) ev = ev * 10 + (p_[ek] - '0');
        }
        e10 += eneg ? -ev : ev;
      }
      dv = e10 > 0 ? std::numeric_limits<double>::infinity() : 0.0;
      if (neg) dv = -dv;
    } else if (r.ec != std::errc() || r.ptr != last) {
      return set_error("invalid number", start);
    }
    v->type = JsonValue::Type::Double;
    v->d = dv;
    return true;
  }

  const unsigned char* p_;
  size_t n_;
  size_t pos_ = 0;
  const JsonParseOptions& opts_;
  uint64_t nodes_ = 0;
  std::string msg_;
  size_t err_pos_ = 0;
};

}  // namespace

bool parse_json(const char* data, size_t size, const JsonParseOptions& opts, JsonValue* out,
                JsonParseError* err) {
  *out = JsonValue();
  Parser parser(data, size, opts);
  return parser.run(out, err);
}

void write_json_int(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

namespace {

// Shortest-digit generation with Grisu2 (F. Loitsch, "Printing
// Floating-Point Numbers Quickly and Accurately with Integers", PLDI 2010),
// in the configuration nlohmann::json uses (alpha = -60, gamma = -32, cached
// powers 10^-300..10^324 in steps of 8). Grisu2 is not always the shortest
// or closest representation (e.g. 234.85440063476563 where the shortest is
// ...562), and Paddle's files are written with it, so std::to_chars cannot
// be used if a rewrite is to reproduce Paddle's bytes.
struct DiyFp {
  uint64_t f;
  int e;
};

DiyFp diy_mul(DiyFp x, DiyFp y) {
  // Upper 64 bits of the 128-bit product, rounded half up.
  unsigned __int128 p = static_cast<unsigned __int128>(x.f) * y.f;
  p += static_cast<unsigned __int128>(1) << 63;
  return DiyFp{static_cast<uint64_t>(p >> 64), x.e + y.e + 64};
}

DiyFp diy_normalize(DiyFp x) {
  while ((x.f >> 63) == 0) {
    x.f <<= 1;
    x.e--;
  }
  return x;
}

struct CachedPower {
  uint64_t f;
  int e;
  int k;
};

// 10^k ~= f * 2^e with f normalised (rounded to nearest); generated with
// exact rational arithmetic.
constexpr CachedPower kCachedPowers[] = {
    {0xAB70FE17C79AC6CA, -1060, -300}, {0xFF77B1FCBEBCDC4F, -1034, -292},
    {0xBE5691EF416BD60C, -1007, -284}, {0x8DD01FAD907FFC3C, -980, -276},
    {0xD3515C2831559A83, -954, -268},  {0x9D71AC8FADA6C9B5, -927, -260},
    {0xEA9C227723EE8BCB, -901, -252},  {0xAECC49914078536D, -874, -244},
    {0x823C12795DB6CE57, -847, -236},  {0xC21094364DFB5637, -821, -228},
    {0x9096EA6F3848984F, -794, -220},  {0xD77485CB25823AC7, -768, -212},
    {0xA086CFCD97BF97F4, -741, -204},  {0xEF340A98172AACE5, -715, -196},
    {0xB23867FB2A35B28E, -688, -188},  {0x84C8D4DFD2C63F3B, -661, -180},
    {0xC5DD44271AD3CDBA, -635, -172},  {0x936B9FCEBB25C996, -608, -164},
    {0xDBAC6C247D62A584, -582, -156},  {0xA3AB66580D5FDAF6, -555, -148},
    {0xF3E2F893DEC3F126, -529, -140},  {0xB5B5ADA8AAFF80B8, -502, -132},
    {0x87625F056C7C4A8B, -475, -124},  {0xC9BCFF6034C13053, -449, -116},
    {0x964E858C91BA2655, -422, -108},  {0xDFF9772470297EBD, -396, -100},
    {0xA6DFBD9FB8E5B88F, -369, -92},   {0xF8A95FCF88747D94, -343, -84},
    {0xB94470938FA89BCF, -316, -76},   {0x8A08F0F8BF0F156B, -289, -68},
    {0xCDB02555653131B6, -263, -60},   {0x993FE2C6D07B7FAC, -236, -52},
    {0xE45C10C42A2B3B06, -210, -44},   {0xAA242499697392D3, -183, -36},
    {0xFD87B5F28300CA0E, -157, -28},   {0xBCE5086492111AEB, -130, -20},
    {0x8CBCCC096F5088CC, -103, -12},   {0xD1B71758E219652C, -77, -4},
    {0x9C40000000000000, -50, 4},      {0xE8D4A51000000000, -24, 12},
    {0xAD78EBC5AC620000, 3, 20},       {0x813F3978F8940984, 30, 28},
    {0xC097CE7BC90715B3, 56, 36},      {0x8F7E32CE7BEA5C70, 83, 44},
    {0xD5D238A4ABE98068, 109, 52},     {0x9F4F2726179A2245, 136, 60},
    {0xED63A231D4C4FB27, 162, 68},     {0xB0DE65388CC8ADA8, 189, 76},
    {0x83C7088E1AAB65DB, 216, 84},     {0xC45D1DF942711D9A, 242, 92},
    {0x924D692CA61BE758, 269, 100},    {0xDA01EE641A708DEA, 295, 108},
    {0xA26DA3999AEF774A, 322, 116},    {0xF209787BB47D6B85, 348, 124},
    {0xB454E4A179DD1877, 375, 132},    {0x865B86925B9BC5C2, 402, 140},
    {0xC83553C5C8965D3D, 428, 148},    {0x952AB45CFA97A0B3, 455, 156},
    {0xDE469FBD99A05FE3, 481, 164},    {0xA59BC234DB398C25, 508, 172},
    {0xF6C69A72A3989F5C, 534, 180},    {0xB7DCBF5354E9BECE, 561, 188},
    {0x88FCF317F22241E2, 588, 196},    {0xCC20CE9BD35C78A5, 614, 204},
    {0x98165AF37B2153DF, 641, 212},    {0xE2A0B5DC971F303A, 667, 220},
    {0xA8D9D1535CE3B396, 694, 228},    {0xFB9B7CD9A4A7443C, 720, 236},
    {0xBB764C4CA7A44410, 747, 244},    {0x8BAB8EEFB6409C1A, 774, 252},
    {0xD01FEF10A657842C, 800, 260},    {0x9B10A4E5E9913129, 827, 268},
    {0xE7109BFBA19C0C9D, 853, 276},    {0xAC2820D9623BF429, 880, 284},
    {0x80444B5E7AA7CF85, 907, 292},    {0xBF21E44003ACDD2D, 933, 300},
    {0x8E679C2F5E44FF8F, 960, 308},    {0xD433179D9C8CB841, 986, 316},
    {0x9E19DB92B4E31BA9, 1013, 324},
};
constexpr int kCachedPowersMinDecExp = -300;
constexpr int kCachedPowersDecStep = 8;
constexpr int kAlpha = -60;

// A cached power c = 10^-k such that alpha <= e + c.e + 64 <= gamma.
const CachedPower& cached_power_for(int e) {
  const int f = kAlpha - e - 1;
  const int k = (f * 78913) / (1 << 18) + static_cast<int>(f > 0);  // ceil(f * log10(2))
  const int index =
      (-kCachedPowersMinDecExp + k + (kCachedPowersDecStep - 1)) / kCachedPowersDecStep;
  return kCachedPowers[index];
}

void grisu2_round(char* buf, int len, uint64_t dist, uint64_t delta, uint64_t rest,
                  uint64_t ten_k) {
  // Move the last digit down while that brings the number closer to w and
  // stays inside the rounding interval.
  while (rest < dist && delta - rest >= ten_k &&
         (rest + ten_k < dist || dist - rest > rest + ten_k - dist)) {
    buf[len - 1]--;
    rest += ten_k;
  }
}

// Digits of a value in (M-, M+), closest to w; value = digits * 10^exp10.
void grisu2_digits(char* buf, int* len, int* exp10, DiyFp m_minus, DiyFp w, DiyFp m_plus) {
  uint64_t delta = m_plus.f - m_minus.f;
  uint64_t dist = m_plus.f - w.f;
  const int shift = -m_plus.e;  // in [32, 60]
  const uint64_t one = uint64_t{1} << shift;
  uint32_t p1 = static_cast<uint32_t>(m_plus.f >> shift);
  uint64_t p2 = m_plus.f & (one - 1);

  // p1 > 0 since m_plus.f >= 2^63 and shift <= 60. n = number of digits.
  uint32_t pow10 = 1;
  int n = 1;
  while (n < 10 && p1 >= pow10 * 10) {
    pow10 *= 10;
    ++n;
  }
  *len = 0;
  while (n > 0) {
    buf[(*len)++] = static_cast<char>('0' + p1 / pow10);
    p1 %= pow10;
    --n;
    uint64_t rest = (static_cast<uint64_t>(p1) << shift) + p2;
    if (rest <= delta) {
      *exp10 += n;
      grisu2_round(buf, *len, dist, delta, rest, static_cast<uint64_t>(pow10) << shift);
      return;
    }
    pow10 /= 10;
  }
  int m = 0;
  for (;;) {
    p2 *= 10;
    buf[(*len)++] = static_cast<char>('0' + (p2 >> shift));
    p2 &= one - 1;
    ++m;
    delta *= 10;
    dist *= 10;
    if (p2 <= delta) break;
  }
  *exp10 -= m;
  grisu2_round(buf, *len, dist, delta, p2, one);
}

// v > 0, finite.
void grisu2(double v, char* buf, int* len, int* exp10) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  const uint64_t frac = bits & ((uint64_t{1} << 52) - 1);
  const int bexp = static_cast<int>(bits >> 52);
  constexpr int kBias = 1075;
  DiyFp w = bexp == 0 ? DiyFp{frac, 1 - kBias} : DiyFp{frac + (uint64_t{1} << 52), bexp - kBias};
  const bool lower_closer = frac == 0 && bexp > 1;
  DiyFp m_plus = diy_normalize(DiyFp{2 * w.f + 1, w.e - 1});
  DiyFp m_minus = lower_closer ? DiyFp{4 * w.f - 1, w.e - 2} : DiyFp{2 * w.f - 1, w.e - 1};
  m_minus.f <<= (m_minus.e - m_plus.e);
  m_minus.e = m_plus.e;
  w = diy_normalize(w);

  const CachedPower& c = cached_power_for(m_plus.e);
  const DiyFp ck{c.f, c.e};
  DiyFp sw = diy_mul(w, ck);
  DiyFp sminus = diy_mul(m_minus, ck);
  DiyFp splus = diy_mul(m_plus, ck);
  // Shrink the interval by one unit on each side: the products are only
  // accurate to within one ulp.
  sminus.f += 1;
  splus.f -= 1;
  *exp10 = -c.k;
  grisu2_digits(buf, len, exp10, sminus, sw, splus);
}

}  // namespace

void write_json_double(double v, std::string* out) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  if (std::signbit(v)) {
    out->push_back('-');
    v = -v;
  }
  if (v == 0) {
    out->append("0.0");
    return;
  }
  char digits[32];
  int k = 0, dec_exp = 0;
  grisu2(v, digits, &k, &dec_exp);
  // value = 0.d1d2...dk * 10^n
  int n = k + dec_exp;
  constexpr int kMinExp = -4, kMaxExp = 15;
  if (k <= n && n <= kMaxExp) {
    out->append(digits, k);
    out->append(static_cast<size_t>(n - k), '0');
    out->append(".0");
    return;
  }
  if (0 < n && n <= kMaxExp) {
    out->append(digits, n);
    out->push_back('.');
    out->append(digits + n, k - n);
    return;
  }
  if (kMinExp < n && n <= 0) {
    out->append("0.");
    out->append(static_cast<size_t>(-n), '0');
    out->append(digits, k);
    return;
  }
  out->push_back(digits[0]);
  if (k > 1) {
    out->push_back('.');
    out->append(digits + 1, k - 1);
  }
  out->push_back('e');
  int e = n - 1;
  out->push_back(e < 0 ? '-' : '+');
  if (e < 0) e = -e;
  if (e < 10) out->push_back('0');
  char eb[8];
  auto er = std::to_chars(eb, eb + sizeof eb, e);
  out->append(eb, er.ptr);
}

void write_json_string(const std::string& s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t k = 0; k < s.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s, run, k - run);
    run = k + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
        break;
    }
  }
  out->append(s, run, std::string::npos);
  out->push_back('"');
}

void write_json(const JsonValue& v, std::string* out) {
  switch (v.type) {
    case JsonValue::Type::Null: out->append("null"); return;
    case JsonValue::Type::Bool: out->append(v.b ? "true" : "false"); return;
    case JsonValue::Type::Int: write_json_int(v.i, out); return;
    case JsonValue::Type::Double:
      // The parser only yields infinities for literals beyond the double
      // range (strtod semantics); write such a literal again so the text
      // re-parses to the same value instead of becoming null.
      if (std::isinf(v.d)) {
        out->append(v.d > 0 ? "1e999" : "-1e999");
        return;
      }
      write_json_double(v.d, out);
      return;
    case JsonValue::Type::String: write_json_string(v.s, out); return;
    case JsonValue::Type::Array:
      write_json_list(v.items, out, [out](const JsonValue& x) { write_json(x, out); });
      return;
    case JsonValue::Type::Object:
      out->push_back('{');
      for (size_t k = 0; k < v.members.size(); ++k) {
        if (k) out->push_back(',');
        write_json_string(v.members[k].first, out);
        out->push_back(':');
        write_json(v.members[k].second, out);
      }
      out->push_back('}');
      return;
  }
}

}  // namespace pif
