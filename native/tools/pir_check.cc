// pir_check: parses PIR inference.json files and checks the reader/writer.
//
//   pir_check [--no-bytes] [--mutate N] [--constants] FILE...
//
// For each file: prints op count, op census, inputs, outputs, parameter count
// and the number of constant-folded values (--constants lists them); then writes the program back,
// re-parses it and compares the two IRs field by field. Unless --no-bytes is
// given, the written JSON must equal the input bytes (true for files written
// by Paddle's compressing writer, versions 1-4). --mutate N additionally
// parses N truncated / byte-mutated copies of each file, which must either
// load (and then round-trip) or fail with ModelError; build with
// -fsanitize=address,undefined to make that a memory-safety check.
// Exit status 0 when every check passed.

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "format/pir_json.h"
#include "graph/ir.h"
#include "passes/constant_fold.h"

using namespace pif;

namespace {

int g_failures = 0;
bool g_print_constants = false;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string tensor_str(const Tensor& t) {
  std::ostringstream s;
  s << dtype_name(t.dtype) << "[";
  for (size_t k = 0; k < t.dims.size(); ++k) s << (k ? "," : "") << t.dims[k];
  s << "] =";
  size_t es = dtype_size(t.dtype);
  uint64_t n = es ? t.nbytes / es : 0;
  for (uint64_t k = 0; k < n && k < 8; ++k) {
    const uint8_t* p = t.data() + k * es;
    if (t.dtype == DType::Int64) {
      s << " " << load<int64_t>(p);
    } else if (t.dtype == DType::Int32) {
      s << " " << load<int32_t>(p);
    } else if (t.dtype == DType::Float32) {
      s << " " << load<float>(p);
    } else if (t.dtype == DType::Float64) {
      s << " " << load<double>(p);
    } else {
      s << " 0x" << std::hex << static_cast<int>(*p) << std::dec;
    }
  }
  if (n > 8) s << " ...";
  return s.str();
}

void failf(const std::string& what) {
  std::cout << "  FAIL: " << what << "\n";
  ++g_failures;
}

bool read_file(const std::string& path, std::vector<uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

std::string type_str(const ValueType& t) {
  std::ostringstream s;
  switch (t.kind) {
    case ValueType::Kind::DenseTensor:
      s << dtype_name(t.dtype) << "[";
      for (size_t k = 0; k < t.dims.size(); ++k) s << (k ? "," : "") << t.dims[k];
      s << "]";
      break;
    case ValueType::Kind::Vector: s << "vec<" << t.elements.size() << ">"; break;
    case ValueType::Kind::Scalar: s << dtype_name(t.dtype); break;
    case ValueType::Kind::Null: s << "null"; break;
    case ValueType::Kind::Other: s << "other:" << t.raw.substr(0, 40); break;
  }
  return s.str();
}

// PIR id of a value (what the IR comparison uses instead of ValueId indices).
int64_t vid_key(const Program& p, ValueId v) {
  if (v == kNoValue) return 0;
  if (v < 0 || static_cast<size_t>(v) >= p.values.size()) return INT64_MIN;
  return p.values[v].pir_id;
}

bool same_value(const Program& a, ValueId va, const Program& b, ValueId vb, std::string* why) {
  if (vid_key(a, va) != vid_key(b, vb)) {
    *why = "value id differs";
    return false;
  }
  if (va == kNoValue) return vb == kNoValue;
  const Value& x = a.values[va];
  const Value& y = b.values[vb];
  if (x.name != y.name)
    *why = "name";
  else if (x.type != y.type)
    *why = "type";
  else if (x.persistable != y.persistable)
    *why = "persistable";
  else if (x.is_parameter != y.is_parameter)
    *why = "is_parameter";
  else if (x.stop_gradient != y.stop_gradient)
    *why = "stop_gradient";
  else if (x.param_index != y.param_index)
    *why = "param_index";
  else
    return true;
  return false;
}

bool same_slots(const Program& a, const std::vector<OpSlot>& x, const Program& b,
                const std::vector<OpSlot>& y, std::string* why) {
  if (x.size() != y.size()) {
    *why = "slot count";
    return false;
  }
  for (size_t k = 0; k < x.size(); ++k) {
    if (x[k].name != y[k].name || x[k].args.size() != y[k].args.size()) {
      *why = "slot shape";
      return false;
    }
    for (size_t m = 0; m < x[k].args.size(); ++m) {
      if (!same_value(a, x[k].args[m], b, y[k].args[m], why)) return false;
    }
  }
  return true;
}

// Field-by-field comparison of two parsed programs.
void compare_programs(const Program& a, const Program& b) {
  auto differs = [](bool d, const char* what) {
    if (d) failf(what);
    return d;
  };
  const std::pair<bool, const char*> header[] = {
      {a.format != b.format, "format differs"},
      {a.version != b.version || a.has_version != b.has_version, "version differs"},
      {a.pir_trainable != b.pir_trainable, "trainable differs"},
      {a.pir_region_name != b.pir_region_name, "region name differs"},
      {a.values.size() != b.values.size(), "value count differs"}};
  for (const auto& h : header) differs(h.first, h.second);
  if (differs(a.blocks.size() != b.blocks.size(), "block count differs")) return;
  for (size_t bi = 0; bi < a.blocks.size(); ++bi) {
    const Block& x = a.blocks[bi];
    const Block& y = b.blocks[bi];
    differs(x.pir_name != y.pir_name, "block name differs");
    differs(x.args.size() != y.args.size(), "block args differ");
    if (differs(x.ops.size() != y.ops.size(), "op count differs")) continue;
    for (size_t k = 0; k < x.ops.size(); ++k) {
      const Op& o = x.ops[k];
      const Op& q = y.ops[k];
      std::string why;
      if (o.type != q.type)
        why = "type";
      else if (!same_slots(a, o.inputs, b, q.inputs, &why))
        why = "inputs: " + why;
      else if (!same_slots(a, o.outputs, b, q.outputs, &why))
        why = "outputs: " + why;
      else if (!(o.attrs == q.attrs))
        why = "attrs";
      else if (!(o.result_attrs == q.result_attrs))
        why = "result_attrs";
      else if (o.extra != q.extra)
        why = "extra";
      if (!why.empty()) {
        failf("op " + std::to_string(k) + " (" + o.type + ") differs: " + why);
        return;
      }
    }
  }
  auto io_eq = [&](const std::vector<IoBinding>& x, const std::vector<IoBinding>& y) {
    if (x.size() != y.size()) return false;
    for (size_t k = 0; k < x.size(); ++k) {
      std::string why;
      if (x[k].name != y[k].name || x[k].col != y[k].col ||
          !same_value(a, x[k].value, b, y[k].value, &why)) {
        return false;
      }
    }
    return true;
  };
  if (!io_eq(a.inputs, b.inputs)) failf("inputs differ");
  if (!io_eq(a.outputs, b.outputs)) failf("outputs differ");
  if (a.params.size() != b.params.size()) {
    failf("param count differs");
  } else {
    for (size_t k = 0; k < a.params.size(); ++k) {
      const Parameter& x = a.params[k];
      const Parameter& y = b.params[k];
      std::string why;
      if (x.name != y.name || x.tensor.dtype != y.tensor.dtype || x.tensor.dims != y.tensor.dims ||
          x.tensor.nbytes != y.tensor.nbytes || !same_value(a, x.value, b, y.value, &why)) {
        failf("param " + std::to_string(k) + " differs");
        break;
      }
    }
  }
  if (dump_program(a) != dump_program(b)) failf("dump_program differs");
}

// Returns the first differing byte offset, or -1.
int64_t first_diff(const std::string& a, const std::vector<uint8_t>& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t k = 0; k < n; ++k) {
    if (static_cast<uint8_t>(a[k]) != b[k]) return static_cast<int64_t>(k);
  }
  return a.size() == b.size() ? -1 : static_cast<int64_t>(n);
}

void check_file(const std::string& path, bool bytes) {
  std::cout << "== " << path << "\n";
  std::vector<uint8_t> data;
  if (!read_file(path, &data)) {
    failf("cannot read file");
    return;
  }
  LoadLimits limits;
  Program p;
  try {
    p = parse_pir_json(data.data(), data.size(), path, limits);
  } catch (const ModelError& e) {
    failf(std::string("parse: ") + e.code() + ": " + e.what());
    return;
  }
  std::map<std::string, int> census;
  for (const Op& o : p.blocks[0].ops) census[o.type]++;
  std::cout << "  version " << p.version << ", trainable " << (p.pir_trainable ? "true" : "false")
            << ", ops " << p.op_count() << ", values " << p.values.size() << ", params "
            << p.params.size() << "\n  census:";
  for (const auto& c : census) std::cout << " " << c.first << "x" << c.second;
  std::cout << "\n";
  for (const auto& io : p.inputs) {
    std::cout << "  input " << io.col << " " << io.name << " %" << p.values[io.value].pir_id << " "
              << type_str(p.values[io.value].type) << "\n";
  }
  for (const auto& io : p.outputs) {
    std::cout << "  output " << io.col << " " << io.name << " %" << p.values[io.value].pir_id << " "
              << type_str(p.values[io.value].type) << "\n";
  }
  if (!p.params.empty()) {
    const Parameter& first = p.params.front();
    std::cout << "  first param " << first.name << " " << dtype_name(first.tensor.dtype) << " "
              << first.tensor.nbytes << " bytes\n";
  }

  std::string out = write_pir_json(p);
  int64_t diff = first_diff(out, data);
  std::cout << "  rewrite: " << out.size() << " bytes, "
            << (diff < 0 ? "byte-identical" : "differs at byte " + std::to_string(diff)) << "\n";
  if (diff >= 0) {
    size_t from = diff > 60 ? static_cast<size_t>(diff - 60) : 0;
    std::cout << "    in : "
              << std::string(data.begin() + from, data.begin() + std::min(data.size(), from + 140))
              << "\n";
    std::cout << "    out: " << out.substr(from, 140) << "\n";
    if (bytes) failf("rewritten JSON is not byte-identical");
  }
  try {
    Program q =
        parse_pir_json(reinterpret_cast<const uint8_t*>(out.data()), out.size(), "rewrite", limits);
    compare_programs(p, q);
    std::string out2 = write_pir_json(q);
    if (out2 != out) failf("second rewrite differs from the first");
  } catch (const ModelError& e) {
    failf(std::string("re-parse: ") + e.what());
  }

  Program folded = p;
  size_t n = fold_constants(&folded);
  size_t consts = 0, tuples = 0;
  for (const Value& v : folded.values) {
    consts += v.constant != nullptr;
    tuples += !v.elements.empty();
  }
  std::cout << "  fold_constants: " << n << " (constants " << consts << ", combine tuples "
            << tuples << ")\n";
  if (g_print_constants) {
    for (const Value& v : folded.values) {
      if (v.constant) std::cout << "    %" << v.pir_id << " " << tensor_str(*v.constant) << "\n";
      if (!v.elements.empty()) {
        std::cout << "    %" << v.pir_id << " = (";
        for (size_t k = 0; k < v.elements.size(); ++k) {
          std::cout << (k ? ", %" : "%") << folded.values[v.elements[k]].pir_id;
        }
        std::cout << ")\n";
      }
    }
  }
  // Folding twice must not change anything.
  if (fold_constants(&folded) != 0) failf("second fold_constants folded more values");
}

// Deterministic mutations: truncations at many points and random byte edits.
void mutate_file(const std::string& path, int count) {
  std::vector<uint8_t> data;
  if (!read_file(path, &data) || data.empty()) return;
  std::mt19937_64 rng(12345);
  int ok = 0, rejected = 0;
  LoadLimits limits;
  static const char kBytes[] = "{}[]\",:0123456789-.eE%#ptfnul \\";
  for (int k = 0; k < count; ++k) {
    std::vector<uint8_t> m = data;
    int mode = k % 4;
    if (mode == 0) {
      m.resize(rng() % m.size());
    } else {
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t at = rng() % m.size();
        if (mode == 1)
          m[at] = static_cast<uint8_t>(rng());
        else
          m[at] = static_cast<uint8_t>(kBytes[rng() % (sizeof kBytes - 1)]);
      }
      if (mode == 3) {
        // Swap two digits runs' positions by deleting a range.
        size_t at = rng() % m.size();
        size_t len = std::min<size_t>(rng() % 64, m.size() - at);
        m.erase(m.begin() + at, m.begin() + at + len);
      }
    }
    try {
      Program p = parse_pir_json(m.data(), m.size(), "mutant", limits);
      ++ok;
      std::string out = write_pir_json(p);
      Program q = parse_pir_json(reinterpret_cast<const uint8_t*>(out.data()), out.size(),
                                 "mutant-rewrite", limits);
      int before = g_failures;
      compare_programs(p, q);
      if (g_failures != before) std::cout << "    (mutant " << k << ")\n";
      fold_constants(&p);
    } catch (const ModelError&) {
      ++rejected;
    } catch (const std::exception& e) {
      failf(std::string("mutant ") + std::to_string(k) + " threw a non-ModelError: " + e.what());
    }
  }
  std::cout << "  mutants: " << count << " (" << ok << " loaded, " << rejected << " rejected)\n";
}

}  // namespace

int main(int argc, char** argv) {
  bool bytes = true;
  int mutate = 0;
  std::vector<std::string> files;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a == "--no-bytes") {
      bytes = false;
    } else if (a == "--mutate" && k + 1 < argc) {
      mutate = std::atoi(argv[++k]);
    } else if (a == "--constants") {
      g_print_constants = true;
    } else {
      files.push_back(a);
    }
  }
  for (const auto& f : files) {
    check_file(f, bytes);
    if (mutate > 0) mutate_file(f, mutate);
  }
  std::cout << (g_failures ? "FAILED (" + std::to_string(g_failures) + ")" : std::string("OK"))
            << "\n";
  return g_failures ? 1 : 0;
}
