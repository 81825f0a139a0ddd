// Shared helpers for the libFuzzer harnesses (native/fuzz/fuzz_*.cc) and the
// corruption checker (native/tools/corrupt_check.cc): small load limits, the
// typed-error contract check, a tiny independent protobuf / tensor-record
// encoder for built-in seed programs, and file helpers.
//
// Nothing here is part of the addon; it is built only by scripts/fuzz.sh and
// scripts/corrupt-check.sh (native/fuzz/CMakeLists.txt).
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "format/limits.h"
#include "format/params.h"
#include "graph/ir.h"

namespace pif_fuzz {

// ---------------------------------------------------------------------------
// Failure reporting. Every invariant violation ends in abort() so that
// libFuzzer (and ASan's death callback in corrupt_check) records it.

// Called by die() before abort(); corrupt_check uses it to save the case.
inline void (*g_die_hook)(const char* msg) = nullptr;

[[noreturn]] inline void die(const char* fmt, ...) {
  char msg[2048];
  va_list ap0;
  va_start(ap0, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap0);
  va_end(ap0);
  std::fprintf(stderr, "\n==PIF-FUZZ== FINDING: %s\n", msg);
  std::fflush(stderr);
  if (g_die_hook != nullptr) g_die_hook(msg);
  std::abort();
}

// Limits small enough that a legitimate load can never exhaust the fuzzer's
// memory (-rss_limit_mb=2048), large enough for every small seed.
inline pif::LoadLimits small_limits() {
  pif::LoadLimits l;
  l.max_file_bytes = 16ull << 20;
  l.max_tensor_bytes = 64ull << 20;
  l.max_total_param_bytes = 256ull << 20;
  l.max_rank = 16;
  l.max_ops = 100000;
  l.max_values = 200000;
  l.max_blocks = 1000;
  l.max_depth = 64;
  return l;
}

inline bool known_code(const std::string& c) {
  return c == pif::code::kFormat || c == pif::code::kParams || c == pif::code::kNotFound ||
         c == pif::code::kLimit || c == pif::code::kIo || c == pif::code::kUnsupported;
}

// Returns "" when the error honours the contract of issue 2 section 4 (stable
// code, names the file), else a description of what is wrong.
inline std::string error_contract_violation(const pif::ModelError& e, const std::string& file) {
  if (e.code().empty()) return "ModelError with empty code";
  if (!known_code(e.code())) return "ModelError with unknown code '" + e.code() + "'";
  if (e.file().empty()) return "ModelError with empty file";
  if (e.file() != file) return "ModelError names file '" + e.file() + "', expected '" + file + "'";
  const char* w = e.what();
  if (w == nullptr || *w == '\0') return "ModelError with empty message";
  if (std::string(w).find(file) == std::string::npos)
    return std::string("ModelError message does not name the file: ") + w;
  return "";
}

inline void check_model_error(const pif::ModelError& e, const std::string& file) {
  std::string v = error_contract_violation(e, file);
  if (!v.empty()) die("%s (what: %s)", v.c_str(), e.what());
}

// First differing line of two dumps, for the round-trip finding message.
inline std::string first_diff(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  int line = 0;
  while (true) {
    bool ga = static_cast<bool>(std::getline(sa, la));
    bool gb = static_cast<bool>(std::getline(sb, lb));
    ++line;
    if (!ga && !gb)
      return "(no line differs; sizes " + std::to_string(a.size()) + " vs " +
             std::to_string(b.size()) + ")";
    if (!ga) la = "<eof>";
    if (!gb) lb = "<eof>";
    if (la != lb || !ga || !gb) {
      if (la.size() > 300) la = la.substr(0, 300) + "...";
      if (lb.size() > 300) lb = lb.substr(0, 300) + "...";
      return "line " + std::to_string(line) + ":\n  first : " + la + "\n  second: " + lb;
    }
  }
}

// Checks every loaded parameter's view against its storage and (touch) reads
// every byte so ASan sees any out-of-bounds view.
inline uint64_t check_params(const pif::Program& p, bool touch = true) {
  uint64_t sum = 0;
  for (size_t i = 0; i < p.params.size(); ++i) {
    const pif::Parameter& prm = p.params[i];
    if (!prm.loaded) die("param %zu (%s) not loaded after a successful bind", i, prm.name.c_str());
    const pif::Tensor& t = prm.tensor;
    if (t.nbytes > 0) {
      if (!t.storage)
        die("param %zu (%s): %llu bytes but no storage", i, prm.name.c_str(),
            static_cast<unsigned long long>(t.nbytes));
      if (t.offset > t.storage->size() || t.nbytes > t.storage->size() - t.offset)
        die("param %zu (%s): view [%llu, +%llu) outside storage of %zu bytes", i, prm.name.c_str(),
            static_cast<unsigned long long>(t.offset), static_cast<unsigned long long>(t.nbytes),
            t.storage->size());
      const uint8_t* d = t.data();
      if (touch)
        for (uint64_t k = 0; k < t.nbytes; ++k) sum += d[k];
      else
        sum += d[0] + d[t.nbytes - 1];
    }
    bool known = true;
    uint64_t numel = 1;
    for (int64_t d : t.dims) {
      if (d < 0)
        known = false;
      else
        numel *= static_cast<uint64_t>(d);
    }
    if (known && pif::dtype_size(t.dtype) != 0 && numel * pif::dtype_size(t.dtype) != t.nbytes)
      die("param %zu (%s): nbytes %llu != numel %llu * %zu", i, prm.name.c_str(),
          static_cast<unsigned long long>(t.nbytes), static_cast<unsigned long long>(numel),
          pif::dtype_size(t.dtype));
  }
  return sum;
}

// ---------------------------------------------------------------------------
// Minimal protobuf / tensor-record encoder, independent of the readers and
// writers under test, used to build the built-in seed programs.

inline void put_varint(std::string* o, uint64_t v) {
  while (v >= 0x80) {
    o->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  o->push_back(static_cast<char>(v));
}
inline void put_tag(std::string* o, int field, int wt) {
  put_varint(o, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wt));
}
inline void put_int(std::string* o, int field, int64_t v) {
  put_tag(o, field, 0);
  put_varint(o, static_cast<uint64_t>(v));
}
inline void put_bytes(std::string* o, int field, const std::string& s) {
  put_tag(o, field, 2);
  put_varint(o, s.size());
  o->append(s);
}
inline void put_float(std::string* o, int field, float f) {
  put_tag(o, field, 5);
  char b[4];
  std::memcpy(b, &f, 4);
  o->append(b, 4);
}

// Legacy VarType.Type codes.
enum LegacyType : int {
  kBool = 0,
  kI16 = 1,
  kI32 = 2,
  kI64 = 3,
  kF16 = 4,
  kF32 = 5,
  kF64 = 6,
  kLodTensor = 7,
  kFeed = 9,
  kFetch = 10,
  kU8 = 20,
  kI8 = 21,
  kBf16 = 22,
};

inline size_t legacy_elem_size(int t) {
  switch (t) {
    case kBool:
    case kU8:
    case kI8: return 1;
    case kI16:
    case kF16:
    case kBf16: return 2;
    case kI32:
    case kF32: return 4;
    case kI64:
    case kF64: return 8;
    default: return 0;
  }
}

inline std::string tensor_desc(int dtype, const std::vector<int64_t>& dims) {
  std::string d;
  put_int(&d, 1, dtype);
  for (int64_t x : dims) put_int(&d, 2, x);
  return d;
}

inline std::string var_desc(const std::string& name, int type, bool persistable, int dtype = -1,
                            const std::vector<int64_t>& dims = {}) {
  std::string vt;
  put_int(&vt, 1, type);
  if (dtype >= 0) {
    std::string lod;
    put_bytes(&lod, 1, tensor_desc(dtype, dims));
    put_bytes(&vt, 3, lod);
  }
  std::string v;
  put_bytes(&v, 1, name);
  put_bytes(&v, 2, vt);
  if (persistable) put_int(&v, 3, 1);
  return v;
}

inline std::string op_var(const std::string& slot, const std::vector<std::string>& args) {
  std::string v;
  put_bytes(&v, 1, slot);
  for (const auto& a : args) put_bytes(&v, 2, a);
  return v;
}

inline std::string int_attr(const std::string& name, int32_t i) {
  std::string a;
  put_bytes(&a, 1, name);
  put_int(&a, 2, 0);  // INT
  put_int(&a, 3, i);
  return a;
}

struct ParamSpec {
  std::string name;
  int dtype;
  std::vector<int64_t> dims;
};

struct ProgramSpec {
  const char* label;
  std::vector<ParamSpec> params;  // declaration order (readers sort by name)
};

// Built-in legacy programs: feed x -> [params unused by ops] -> fetch x, plus a
// `scale` and a `fill_constant` so the op path is not empty.
inline const std::vector<ProgramSpec>& builtin_programs() {
  static const std::vector<ProgramSpec> specs = {
      {"empty", {}},
      {"small", {{"a.w_0", kF32, {2, 3}}, {"a.b_0", kF32, {3}}}},
      {"dtypes",
       {{"p_f64", kF64, {1}},
        {"p_f32", kF32, {1, 1}},
        {"p_bf16", kBf16, {2}},
        {"p_f16", kF16, {3}},
        {"p_i64", kI64, {2}},
        {"p_i32", kI32, {2}},
        {"p_i16", kI16, {2}},
        {"p_u8", kU8, {4}},
        {"p_i8", kI8, {2}},
        {"p_bool", kBool, {3}}}},
      {"shapes",
       {{"s_10", kF32, {1}},
        {"s_2", kF32, {2, 1, 1, 2}},
        {"s_1", kI64, {1, 1, 1, 1, 1, 1, 1, 1}},
        {"s_1x", kF32, {7}}}},
      // The names and shapes of the mnist_mlp_legacy_separate fixture, so its
      // parameter files bind, except fc_0.w_0 ([784, 100] there): its 313 KB
      // record never fits -max_len, and a 360 KB arena (ASan maps and zeroes
      // it for every combined bind) halved fuzz_pdiparams' exec rate.
      {"mnist",
       {{"fc_0.w_0", kF32, {64, 100}},
        {"fc_0.b_0", kF32, {100}},
        {"fc_1.w_0", kF32, {100, 100}},
        {"fc_1.b_0", kF32, {100}},
        {"fc_2.w_0", kF32, {100, 10}},
        {"fc_2.b_0", kF32, {10}}}},
      {"edge", {{"e_zero", kF32, {0}}, {"e_scalar", kF32, {}}, {"e_one", kU8, {1}}}},
  };
  return specs;
}

// OpDesc: inputs (field 1), outputs (2), type (3), attrs (4), in that order.
inline std::string op_desc(const std::string& type, const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs,
                           const std::vector<std::string>& attrs) {
  std::string op;
  for (const auto& i : inputs) put_bytes(&op, 1, i);
  for (const auto& o : outputs) put_bytes(&op, 2, o);
  put_bytes(&op, 3, type);
  for (const auto& a : attrs) put_bytes(&op, 4, a);
  return op;
}

inline std::string encode_program(const ProgramSpec& spec) {
  std::string block;
  put_int(&block, 1, 0);   // idx
  put_int(&block, 2, -1);  // parent_idx
  put_bytes(&block, 3, var_desc("feed", kFeed, true));
  put_bytes(&block, 3, var_desc("fetch", kFetch, true));
  put_bytes(&block, 3, var_desc("x", kLodTensor, false, kF32, {-1, 3}));
  put_bytes(&block, 3, var_desc("y", kLodTensor, false, kF32, {-1, 3}));
  put_bytes(&block, 3, var_desc("c", kLodTensor, false, kF32, {2}));
  for (const auto& p : spec.params)
    put_bytes(&block, 3, var_desc(p.name, kLodTensor, true, p.dtype, p.dims));
  put_bytes(&block, 4,
            op_desc("feed", {op_var("X", {"feed"})}, {op_var("Out", {"x"})}, {int_attr("col", 0)}));
  {
    std::string shape;
    put_bytes(&shape, 1, "shape");
    put_int(&shape, 2, 11);  // LONGS
    put_int(&shape, 15, 2);
    std::string value;
    put_bytes(&value, 1, "value");
    put_int(&value, 2, 1);  // FLOAT
    put_float(&value, 4, 0.5f);
    put_bytes(&block, 4,
              op_desc("fill_constant", {}, {op_var("Out", {"c"})},
                      {int_attr("dtype", kF32), shape, value}));
  }
  {
    std::string s;
    put_bytes(&s, 1, "scale");
    put_int(&s, 2, 1);
    put_float(&s, 4, 1.0f);
    put_bytes(&block, 4, op_desc("scale", {op_var("X", {"x"})}, {op_var("Out", {"y"})}, {s}));
  }
  put_bytes(
      &block, 4,
      op_desc("fetch", {op_var("X", {"y"})}, {op_var("Out", {"fetch"})}, {int_attr("col", 0)}));
  std::string prog;
  put_bytes(&prog, 1, block);
  std::string ver;
  put_int(&ver, 1, 2006002);
  put_bytes(&prog, 4, ver);
  return prog;
}

inline void put_le(std::string* o, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) o->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// One save_combine record with deterministic data (and optional LoD levels).
inline std::string encode_record(int dtype, const std::vector<int64_t>& dims, uint8_t fill,
                                 const std::vector<std::vector<uint64_t>>& lod = {}) {
  std::string r;
  put_le(&r, 0, 4);
  put_le(&r, lod.size(), 8);
  for (const auto& level : lod) {
    put_le(&r, level.size() * 8, 8);
    for (uint64_t x : level) put_le(&r, x, 8);
  }
  put_le(&r, 0, 4);
  std::string desc = tensor_desc(dtype, dims);
  put_le(&r, desc.size(), 4);
  r += desc;
  uint64_t numel = 1;
  for (int64_t d : dims) numel *= static_cast<uint64_t>(d);
  size_t n = numel * legacy_elem_size(dtype);
  for (size_t i = 0; i < n; ++i) r.push_back(static_cast<char>(fill + i * 7));
  return r;
}

inline std::vector<ParamSpec> sorted_params(const ProgramSpec& spec) {
  std::vector<ParamSpec> v = spec.params;
  std::sort(v.begin(), v.end(),
            [](const ParamSpec& a, const ParamSpec& b) { return a.name < b.name; });
  return v;
}

// ---------------------------------------------------------------------------
// Built-in PIR JSON seeds (version 1 compressed form and the pre-release
// spelling), small enough to mutate quickly.

inline std::vector<std::pair<std::string, std::string>> builtin_pir_seeds() {
  const char* dt = R"({"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,3,8,8],"NCHW",[],0]})";
  std::
      string v1 = std::string(
                      R"({"base_code":{"magic":"pir","trainable":true,"version":1},"program":{"regions":[{"#":"region_0","blocks":[{"#":"block_0","args":[],"ops":[)") +
                  R"({"#":"p","A":[0,1,1,"conv.b"],"DA":[],"O":{"%":1,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[4],"NCHW",[],0]}},"OA":[1,0,1],"QA":[]},)" +
                  R"({"#":"p","A":[0,1,1,"conv.w"],"DA":[],"O":{"%":2,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[4,3,1,1],"NCHW",[],0]}},"OA":[1,0,1],"QA":[]},)" +
                  R"({"#":"1.data","A":[{"AT":{"#":"0.a_str","D":"x"},"N":"name"},{"AT":{"#":"1.a_intarray","D":[-1,3,8,8]},"N":"shape"},{"AT":{"#":"1.a_dtype","D":"float32"},"N":"dtype"},{"AT":{"#":"1.a_place","D":[0,0,""]},"N":"place"}],"I":[],"O":[{"%":3,"TT":)" +
                  dt +
                  R"(}],"OA":[{"AT":{"#":"0.a_array","D":[{"#":"0.a_bool","D":true}]},"N":"stop_gradient"}]},)" +
                  R"({"#":"1.conv2d","A":[{"AT":{"#":"0.a_array","D":[{"#":"0.a_i32","D":1},{"#":"0.a_i32","D":1}]},"N":"strides"},{"AT":{"#":"0.a_array","D":[{"#":"0.a_i32","D":0},{"#":"0.a_i32","D":0}]},"N":"paddings"},{"AT":{"#":"0.a_str","D":"EXPLICIT"},"N":"padding_algorithm"},{"AT":{"#":"0.a_array","D":[{"#":"0.a_i32","D":1},{"#":"0.a_i32","D":1}]},"N":"dilations"},{"AT":{"#":"0.a_i32","D":1},"N":"groups"},{"AT":{"#":"0.a_str","D":"NCHW"},"N":"data_format"}],"I":[{"%":3},{"%":2}],"O":[{"%":4,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,4,8,8],"NCHW",[],0]}}]},)" + R"({"#":"1.full_int_array","A":[{"AT":{"#":"0.a_array","D":[{"#":"0.a_i64","D":1},{"#":"0.a_i64","D":4},{"#":"0.a_i64","D":1},{"#":"0.a_i64","D":1}]},"N":"value"},{"AT":{"#":"1.a_dtype","D":"int64"},"N":"dtype"},{"AT":{"#":"1.a_place","D":[1,0,""]},"N":"place"}],"I":[],"O":[{"%":5,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_i64"},[4],"NCHW",[],0]}}]},)" + R"({"#":"1.reshape","A":[],"I":[{"%":1},{"%":5}],"O":[{"%":6,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[1,4,1,1],"NCHW",[],0]}}]},)" + R"({"#":"1.add","A":[],"I":[{"%":4},{"%":6}],"O":[{"%":7,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,4,8,8],"NCHW",[],0]}}]},)" + R"({"#":"1.full","A":[{"AT":{"#":"1.a_intarray","D":[1]},"N":"shape"},{"AT":{"#":"0.a_f64","D":1.0},"N":"value"},{"AT":{"#":"1.a_dtype","D":"int32"},"N":"dtype"},{"AT":{"#":"1.a_place","D":[1,0,""]},"N":"place"}],"I":[],"O":[{"%":8,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_i32"},[1],"NCHW",[],0]}}]},)" + R"({"#":"0.combine","A":[],"I":[{"%":7},{"%":7}],"O":[{"%":9,"TT":{"#":"0.t_vec","D":[{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,4,8,8],"NCHW",[],0]},{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,4,8,8],"NCHW",[],0]}]}}]},)" + R"({"#":"1.concat","A":[],"I":[{"%":9},{"%":8}],"O":[{"%":10,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,8,8,8],"NCHW",[],0]}}]},)" +
                  R"({"#":"1.full","A":[{"AT":{"#":"1.a_intarray","D":[1]},"N":"shape"},{"AT":{"#":"0.a_f32","VD":"NaN"},"N":"value"},{"AT":{"#":"1.a_dtype","D":"float32"},"N":"dtype"},{"AT":{"#":"1.a_place","D":[1,0,""]},"N":"place"}],"I":[],"O":[{"%":11,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[1],"NCHW",[],0]}}]},)" +
                  R"({"#":"1.scale","A":[{"AT":{"#":"0.a_f32","D":0.0},"N":"bias"},{"AT":{"#":"0.a_bool","D":true},"N":"bias_after_scale"}],"I":[{"%":10},{"%":11}],"O":[{"%":12,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,8,8,8],"NCHW",[],0]}}]},)" +
                  R"({"#":"1.dropout","A":[{"AT":{"#":"0.a_bool","D":true},"N":"is_test"},{"AT":{"#":"0.a_str","D":"upscale_in_train"},"N":"mode"},{"AT":{"#":"0.a_i32","D":0},"N":"seed"},{"AT":{"#":"0.a_bool","D":false},"N":"fix_seed"}],"I":[{"%":12},{"%":0},{"%":11}],"O":[{"%":13,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,8,8,8],"NCHW",[],0]}},{"%":14,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_ui8"},[-1,8,8,8],"NCHW",[],0]}}]},)" +
                  R"({"#":"1.fetch","A":[{"AT":{"#":"0.a_str","D":"fetch_name_0"},"N":"name"},{"AT":{"#":"0.a_i32","D":0},"N":"col"}],"I":[{"%":13}],"O":[{"%":15,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,8,8,8],"NCHW",[],0]}}],"OA":[{"AT":{"#":"0.a_array","D":[{"#":"0.a_bool","D":true}]},"N":"persistable"}]})" +
                  "]}]}]}}";
  std::string pre =
      std::string(
          R"({"base_code":{"magic":"pir","trainable":false,"version":0},"program":{"regions":[{"#":"region_0","blocks":[{"#":"block_0","args":[],"ops":[)") +
      R"({"#":"builtin.parameter","A":[{"AT":{"#":"0.a_str","D":"w"},"N":"parameter_name"}],"I":[],"O":[{"#":1,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[3],"NCHW",[],0]}}]},)" +
      R"({"#":"pd_op.data","A":[{"AT":{"#":"0.a_str","D":"x"},"N":"name"},{"AT":{"#":"1.a_intarray","D":[-1,3]},"N":"shape"},{"AT":{"#":"1.a_dtype","D":"float32"},"N":"dtype"},{"AT":{"#":"1.a_place","D":[0,0,""]},"N":"place"}],"I":[],"O":[{"#":2,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,3],"NCHW",[],0]}}]},)" +
      R"({"#":"pd_op.add","A":[],"I":[{"#":2},{"#":1}],"O":[{"#":3,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,3],"NCHW",[],0]}}]},)" +
      R"({"#":"pd_op.fetch","A":[{"AT":{"#":"0.a_str","D":"out"},"N":"name"},{"AT":{"#":"0.a_i32","D":0},"N":"col"}],"I":[{"#":3}],"O":[{"#":4,"TT":{"#":"0.t_dtensor","D":[{"#":"0.t_f32"},[-1,3],"NCHW",[],0]}}]})" +
      "]}]}]}}";
  std::string tiny =
      R"({"base_code":{"magic":"pir","trainable":true,"version":4},"program":{"regions":[{"#":"region_0","blocks":[{"#":"block_0","args":[],"ops":[]}]}]}})";
  return {
      {"builtin_v1.json", v1}, {"builtin_prerelease.json", pre}, {"builtin_empty_v4.json", tiny}};
}

// ---------------------------------------------------------------------------
// Parameters declared by a fuzzed program: planning the arena must refuse
// absurd declarations with a typed error, and a params file synthesised to
// match the declarations (when small) must bind.

inline void exercise_declared_params(const pif::Program& parsed, const std::string& file,
                                     const pif::LoadLimits& limits) {
  if (parsed.params.empty()) return;
  pif::Program p = parsed;
  std::vector<uint64_t> offsets;
  std::shared_ptr<std::vector<uint8_t>> arena;
  try {
    arena = pif::plan_param_arena(&p, file, limits, &offsets);
  } catch (const pif::ModelError& e) {
    check_model_error(e, file);
    return;
  }
  if (offsets.size() != p.params.size())
    die("plan_param_arena: %zu offsets for %zu params", offsets.size(), p.params.size());
  if (arena->size() > limits.max_total_param_bytes)
    die("plan_param_arena: arena of %zu bytes over max_total_param_bytes", arena->size());
  // Synthesise matching records (zero data) and bind them.
  std::string buf;
  uint64_t total = 0;
  for (const auto& prm : p.params) {
    const pif::Tensor& t = prm.tensor;
    uint64_t n = pif::dtype_size(t.dtype);
    for (int64_t d : t.dims) n *= static_cast<uint64_t>(d);  // planned: dims >= 0, no overflow
    total += n;
    if (total > (256u << 10)) return;
    int code = pif::dtype_to_legacy(t.dtype);
    if (code < 0) return;
    put_le(&buf, 0, 4);
    put_le(&buf, 0, 8);
    put_le(&buf, 0, 4);
    std::string desc = tensor_desc(code, t.dims);
    put_le(&buf, desc.size(), 4);
    buf += desc;
    buf.append(static_cast<size_t>(n), '\0');
  }
  try {
    pif::bind_combined_params(&p, reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), file,
                              limits);
  } catch (const pif::ModelError& e) {
    die("params synthesised from the program's own declarations do not bind: %s", e.what());
  }
  check_params(p, false);
}

// ---------------------------------------------------------------------------
// Seed shrinking: a window of `count` ops of block 0 starting at the
// `start`-th non-parameter op, the parameter ops (PIR) and variables (legacy)
// they use, the first `count` ops of each legacy sub-block, and no debug
// attributes. The result is written by the writer
// under test and serves as a small, valid seed.

inline void shrink_program(pif::Program* p, size_t start, size_t count) {
  static const char* kDebugAttrs[] = {"op_callstack", "struct_name", "op_dist_attr"};
  for (pif::Block& b : p->blocks)
    for (pif::Op& op : b.ops) {
      std::vector<pif::NamedAttr> kept;
      for (auto& a : op.attrs)
        if (std::find(std::begin(kDebugAttrs), std::end(kDebugAttrs), a.name) ==
            std::end(kDebugAttrs))
          kept.push_back(a);
      op.attrs.swap(kept);
    }
  if (p->blocks.empty() || count == 0) return;
  pif::Block& b0 = p->blocks[0];
  const bool pir = p->format == pif::ProgramFormat::Pir;
  std::vector<size_t> others;  // indices of non-parameter ops
  for (size_t i = 0; i < b0.ops.size(); ++i)
    if (!(pir && b0.ops[i].type == "builtin.parameter")) others.push_back(i);
  if (start >= others.size()) start = others.size() > count ? others.size() - count : 0;
  std::vector<char> keep(b0.ops.size(), 0);
  std::vector<size_t> work;
  for (size_t k = start; k < std::min(others.size(), start + count); ++k) {
    keep[others[k]] = 1;
    work.push_back(others[k]);
  }
  // PIR operands must be defined by an earlier op: keep the producers of the
  // window's operands, transitively (this also keeps its parameter ops).
  if (pir) {
    std::vector<ptrdiff_t> producer(p->values.size(), -1);
    for (size_t i = 0; i < b0.ops.size(); ++i)
      for (const auto& s : b0.ops[i].outputs)
        for (pif::ValueId v : s.args)
          if (v >= 0 && static_cast<size_t>(v) < producer.size())
            producer[static_cast<size_t>(v)] = static_cast<ptrdiff_t>(i);
    while (!work.empty()) {
      size_t i = work.back();
      work.pop_back();
      for (const auto& s : b0.ops[i].inputs)
        for (pif::ValueId v : s.args) {
          if (v < 0 || static_cast<size_t>(v) >= producer.size()) continue;
          ptrdiff_t pi = producer[static_cast<size_t>(v)];
          if (pi >= 0 && !keep[static_cast<size_t>(pi)]) {
            keep[static_cast<size_t>(pi)] = 1;
            work.push_back(static_cast<size_t>(pi));
          }
        }
    }
  }
  std::vector<pif::Op> ops;
  for (size_t i = 0; i < b0.ops.size(); ++i)
    if (keep[i]) ops.push_back(b0.ops[i]);
  b0.ops.swap(ops);
  // Legacy sub-blocks (control flow: while, conditional_block) keep their
  // first `count` ops; they may use variables of their parent blocks, so the
  // variables kept in every block are those used by any kept op.
  if (!pir)
    for (size_t bi = 1; bi < p->blocks.size(); ++bi)
      if (p->blocks[bi].ops.size() > count) p->blocks[bi].ops.resize(count);
  std::vector<char> used(p->values.size(), 0);
  for (const pif::Block& b : p->blocks)
    for (const auto& op : b.ops)
      for (const auto* slots : {&op.inputs, &op.outputs})
        for (const auto& s : *slots)
          for (pif::ValueId v : s.args)
            if (v >= 0 && static_cast<size_t>(v) < used.size()) used[static_cast<size_t>(v)] = 1;
  if (!pir) {
    for (pif::Block& b : p->blocks) {
      std::vector<pif::ValueId> vars;
      for (pif::ValueId v : b.vars) {
        if (v < 0 || static_cast<size_t>(v) >= p->values.size()) continue;
        int t = p->values[static_cast<size_t>(v)].var_type;
        if (used[static_cast<size_t>(v)] || t == kFeed || t == kFetch) vars.push_back(v);
      }
      b.vars.swap(vars);
    }
  }
  p->outputs.clear();
  p->inputs.clear();
}

// ---------------------------------------------------------------------------
// Files.

inline bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

inline bool write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return false;
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f);
}

inline bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

inline bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Model directories under a fixtures root (the root itself, its children and
// grandchildren), each with the program file found in it.
inline std::vector<std::pair<std::string, std::string>> find_program_files(
    const std::string& root) {
  static const char* kNames[] = {"inference.json", "inference.pdmodel", "model.pdmodel",
                                 "__model__"};
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> dirs = {root};
  for (const auto& c : list_dir(root)) {
    std::string d = root + "/" + c;
    if (!is_dir(d)) continue;
    dirs.push_back(d);
    for (const auto& g : list_dir(d))
      if (is_dir(d + "/" + g)) dirs.push_back(d + "/" + g);
  }
  for (const auto& d : dirs)
    for (const char* n : kNames)
      if (is_file(d + "/" + n)) out.emplace_back(d, d + "/" + n);
  return out;
}

inline std::string sanitize_name(std::string s) {
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  return s;
}

// ---------------------------------------------------------------------------
// Seed mode (scripts/fuzz.sh): PIF_FUZZ_SEEDS_OUT=<dir> [PIF_FUZZ_MAX_LEN=<n>].

// PIF_FUZZ_MAX_LEN, or `dflt` when it is not set.
inline size_t seed_max_len(size_t dflt) {
  if (const char* m = std::getenv("PIF_FUZZ_MAX_LEN")) return std::strtoull(m, nullptr, 10);
  return dflt;
}

// Writes one non-empty seed of at most max_len bytes as <dir>/<name> (name sanitised).
inline void write_seed(const std::string& dir, const std::string& name, const std::string& data,
                       size_t max_len, int* count) {
  if (data.empty() || data.size() > max_len) return;
  if (write_file(dir + "/" + sanitize_name(name), data)) ++*count;
}

// For LLVMFuzzerInitialize: with PIF_FUZZ_SEEDS_OUT set, writes the seeds there and exits.
inline void run_seed_mode(void (*make_seeds)(const std::string& out)) {
  if (const char* out = std::getenv("PIF_FUZZ_SEEDS_OUT")) {
    make_seeds(out);
    std::exit(0);
  }
}

}  // namespace pif_fuzz
