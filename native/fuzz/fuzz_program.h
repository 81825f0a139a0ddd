// The program-reader harness shared by fuzz_pdmodel and fuzz_pir_json: seed generation from the
// built-in programs and the fixtures, the per-input contract (typed errors, write + re-parse
// round trip, declared params, constant folding), and the libFuzzer entry points. A harness
// defines program_format() and builtin_program_seeds() and includes this header once.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "format/limits.h"
#include "fuzz/fuzz_util.h"
#include "graph/ir.h"
#include "passes/constant_fold.h"

namespace pif_fuzz {

// One program format as the harness sees it.
struct ProgramFormat {
  const char* harness;      // "fuzz_pdmodel", for the seed-mode summary line
  const char* file;         // the file name errors must name
  const char* rewritten;    // the file name of the re-parse
  const char* written;      // what the writer produces, in findings ("program", "JSON")
  const char* fixture_ext;  // suffix of a whole-fixture seed (".pdmodel", ".json")
  bool json_fixtures;       // seeds from inference.json fixtures (else from the others)
  size_t prefixes[3];       // prefix seed lengths
  size_t default_max_len;   // seed size bound without PIF_FUZZ_MAX_LEN
  pif::Program (*parse)(const uint8_t* data, size_t size, const std::string& file,
                        const pif::LoadLimits& limits);
  std::string (*write)(const pif::Program& p);
};

// Seed mode: the built-in seeds, then per fixture program of the format (PIF_FUZZ_FIXTURES):
// the file, its prefixes and shrunk re-written variants.
inline void make_program_seeds(const std::string& out, const ProgramFormat& f,
                               const std::vector<std::pair<std::string, std::string>>& builtin) {
  const size_t max_len = seed_max_len(f.default_max_len);
  int count = 0;
  for (const auto& s : builtin) write_seed(out, s.first, s.second, max_len, &count);
  const char* root = std::getenv("PIF_FUZZ_FIXTURES");
  if (root != nullptr && *root != '\0') {
    for (const auto& df : find_program_files(root)) {
      const std::string& file = df.second;
      const bool json = file.size() >= 5 && file.compare(file.size() - 5, 5, ".json") == 0;
      if (json != f.json_fixtures) continue;
      std::string bytes;
      if (!read_file(file, &bytes)) continue;
      std::string tag = df.first.substr(std::string(root).size());
      write_seed(out, "fixture" + tag + f.fixture_ext, bytes, max_len, &count);
      for (size_t n : f.prefixes)
        if (bytes.size() > n)
          write_seed(out, "prefix" + std::to_string(n) + tag, bytes.substr(0, n), max_len, &count);
      try {
        pif::Program p = f.parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), file,
                                 pif::LoadLimits());
        const size_t n = p.blocks.empty() ? 0 : p.blocks[0].ops.size();
        // Small windows (1-4 ops) keep structure-rich seeds within a small
        // -max_len (the long runs use 4-8 KB).
        const size_t windows[][2] = {{0, 0},     {0, 1},     {0, 2},          {0, 4},
                                     {0, 16},    {0, 48},    {n / 4, 2},      {n / 3, 16},
                                     {n / 2, 1}, {n / 2, 8}, {2 * n / 3, 32}, {3 * n / 4, 4}};
        for (const auto& w : windows) {
          pif::Program q = p;
          shrink_program(&q, w[0], w[1]);
          std::string s = f.write(q);
          std::string label = "shrunk" + std::to_string(w[0]) + "+" + std::to_string(w[1]);
          write_seed(out, label + tag, s, max_len, &count);
          try {
            f.parse(reinterpret_cast<const uint8_t*>(s.data()), s.size(), "seed",
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
  std::printf("%s: wrote %d seeds to %s\n", f.harness, count, out.c_str());
}

// One fuzz input: parse either succeeds or throws a typed ModelError naming the file; what is
// written reads back to the same IR (and, with PIF_FUZZ_STRICT=1, writes the same bytes); the
// declared params plan and bind; constant folding survives any program the reader accepts.
inline int check_program_input(const uint8_t* data, size_t size, const ProgramFormat& f) {
  static const pif::LoadLimits limits = small_limits();
  pif::Program p;
  try {
    p = f.parse(data, size, f.file, limits);
  } catch (const pif::ModelError& e) {
    check_model_error(e, f.file);
    return 0;
  }

  // Round trip: what we write must read back to the same IR.
  const std::string d1 = pif::dump_program(p);
  std::string bytes = f.write(p);
  pif::Program q;
  try {
    q = f.parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), f.rewritten, limits);
  } catch (const pif::ModelError& e) {
    die("round trip: re-parse of written %s failed: %s", f.written, e.what());
  }
  const std::string d2 = pif::dump_program(q);
  if (d1 != d2)
    die("round trip: dump_program differs after write+parse, %s", first_diff(d1, d2).c_str());
  // Optional (PIF_FUZZ_STRICT=1): the writer is a fixed point on its own output.
  static const bool strict = std::getenv("PIF_FUZZ_STRICT") != nullptr;
  if (strict && f.write(q) != bytes)
    die("strict: writing the re-parsed %s gives different bytes", f.written);

  exercise_declared_params(p, f.file, limits);

  // Load-time constant folding must survive any program the reader accepts.
  try {
    pif::fold_constants(&p);
  } catch (const pif::ModelError& e) {
    if (!known_code(e.code())) die("fold_constants: bad ModelError: %s", e.what());
  }
  return 0;
}

// Defined by the harness: its format and its built-in seeds (name, bytes).
const ProgramFormat& program_format();
std::vector<std::pair<std::string, std::string>> builtin_program_seeds();

}  // namespace pif_fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pif_fuzz::run_seed_mode([](const std::string& out) {
    pif_fuzz::make_program_seeds(out, pif_fuzz::program_format(),
                                 pif_fuzz::builtin_program_seeds());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pif_fuzz::check_program_input(data, size, pif_fuzz::program_format());
}
