// libFuzzer harness: PIR inference.json reader (parse_pir_json), its writer
// (round trip), and load-time constant folding.
//
// Contract checked for every input:
// - parse either succeeds or throws pif::ModelError with a known code that
//   names the file; any other exception, crash, leak or sanitizer report is a
//   finding;
// - when parse succeeds: write_pir_json -> parse again must succeed and
//   dump_program must be identical; the declared params must plan (or be
//   refused with a typed error) and bind a file synthesised from them;
//   fold_constants must not crash;
// - with PIF_FUZZ_STRICT=1 also: writing the re-parsed program reproduces
//   the written bytes.
//
// Seed mode: PIF_FUZZ_SEEDS_OUT=<dir> [PIF_FUZZ_FIXTURES=<root>]
// [PIF_FUZZ_MAX_LEN=<n>] writes seeds (built-in programs, fixture programs,
// prefixes, shrunk re-written variants) and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "format/pir_json.h"
#include "fuzz/fuzz_util.h"
#include "graph/ir.h"
#include "passes/constant_fold.h"

namespace {

const char* kFile = "fuzz.inference.json";

void write_seed(const std::string& dir, const std::string& name, const std::string& data,
                size_t max_len, int* count) {
  if (data.empty() || data.size() > max_len) return;
  if (pif_fuzz::write_file(dir + "/" + pif_fuzz::sanitize_name(name), data)) ++*count;
}

void make_seeds(const std::string& out) {
  size_t max_len = 300000;
  if (const char* m = std::getenv("PIF_FUZZ_MAX_LEN")) max_len = std::strtoull(m, nullptr, 10);
  int count = 0;
  for (const auto& s : pif_fuzz::builtin_pir_seeds())
    write_seed(out, s.first, s.second, max_len, &count);
  const char* root = std::getenv("PIF_FUZZ_FIXTURES");
  if (root != nullptr && *root != '\0') {
    for (const auto& df : pif_fuzz::find_program_files(root)) {
      const std::string& file = df.second;
      if (file.size() < 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
      std::string bytes;
      if (!pif_fuzz::read_file(file, &bytes)) continue;
      std::string tag = df.first.substr(std::string(root).size());
      write_seed(out, "fixture" + tag + ".json", bytes, max_len, &count);
      for (size_t n : {200, 4096, 32768})
        if (bytes.size() > n)
          write_seed(out, "prefix" + std::to_string(n) + tag, bytes.substr(0, n), max_len, &count);
      try {
        pif::Program p = pif::parse_pir_json(reinterpret_cast<const uint8_t*>(bytes.data()),
                                             bytes.size(), file, pif::LoadLimits());
        const size_t n = p.blocks.empty() ? 0 : p.blocks[0].ops.size();
        // Small windows (1-4 ops) keep structure-rich seeds within a small
        // -max_len (the long runs use 4-8 KB).
        const size_t windows[][2] = {{0, 0},     {0, 1},     {0, 2},          {0, 4},
                                     {0, 16},    {0, 48},    {n / 4, 2},      {n / 3, 16},
                                     {n / 2, 1}, {n / 2, 8}, {2 * n / 3, 32}, {3 * n / 4, 4}};
        for (const auto& w : windows) {
          pif::Program q = p;
          pif_fuzz::shrink_program(&q, w[0], w[1]);
          std::string s = pif::write_pir_json(q);
          std::string label = "shrunk" + std::to_string(w[0]) + "+" + std::to_string(w[1]);
          write_seed(out, label + tag, s, max_len, &count);
          try {
            pif::parse_pir_json(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "seed",
                                pif::LoadLimits());
          } catch (const pif::ModelError& e) {
            std::fprintf(stderr, "seed warning: re-written %s (%s) does not parse: %s\n",
                         file.c_str(), label.c_str(), e.what());
          }
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "seed warning: fixture %s does not parse: %s\n", file.c_str(),
                     e.what());
      }
    }
  }
  std::printf("fuzz_pir_json: wrote %d seeds to %s\n", count, out.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("PIF_FUZZ_SEEDS_OUT")) {
    make_seeds(out);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const pif::LoadLimits limits = pif_fuzz::small_limits();
  pif::Program p;
  try {
    p = pif::parse_pir_json(data, size, kFile, limits);
  } catch (const pif::ModelError& e) {
    pif_fuzz::check_model_error(e, kFile);
    return 0;
  }

  const std::string d1 = pif::dump_program(p);
  std::string text = pif::write_pir_json(p);
  pif::Program q;
  try {
    q = pif::parse_pir_json(reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                            "fuzz.rewritten.json", limits);
  } catch (const pif::ModelError& e) {
    pif_fuzz::die("round trip: re-parse of written JSON failed: %s", e.what());
  }
  const std::string d2 = pif::dump_program(q);
  if (d1 != d2)
    pif_fuzz::die("round trip: dump_program differs after write+parse, %s",
                  pif_fuzz::first_diff(d1, d2).c_str());
  // Optional (PIF_FUZZ_STRICT=1): the writer is a fixed point on its own output.
  static const bool strict = std::getenv("PIF_FUZZ_STRICT") != nullptr;
  if (strict && pif::write_pir_json(q) != text)
    pif_fuzz::die("strict: writing the re-parsed JSON gives different bytes");

  pif_fuzz::exercise_declared_params(p, kFile, limits);

  try {
    pif::fold_constants(&p);
  } catch (const pif::ModelError& e) {
    if (!pif_fuzz::known_code(e.code()))
      pif_fuzz::die("fold_constants: bad ModelError: %s", e.what());
  }
  return 0;
}
