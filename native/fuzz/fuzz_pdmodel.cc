// libFuzzer harness: legacy ProgramDesc reader (parse_program_desc), its
// writer (round trip), and load-time constant folding.
//
// Contract checked for every input:
// - parse either succeeds or throws pif::ModelError with a known code that
//   names the file; any other exception, crash, leak or sanitizer report is a
//   finding;
// - when parse succeeds: write_program_desc -> parse again must succeed and
//   dump_program must be identical; the declared params must plan (or be
//   refused with a typed error) and bind a file synthesised from them;
//   fold_constants must not crash;
// - with PIF_FUZZ_STRICT=1 also: writing the re-parsed program reproduces
//   the written bytes.
//
// Seed mode (used by scripts/fuzz.sh, not by libFuzzer): with
// PIF_FUZZ_SEEDS_OUT=<dir> [PIF_FUZZ_FIXTURES=<root>] [PIF_FUZZ_MAX_LEN=<n>],
// the binary writes seed inputs (built-in programs, fixture programs, their
// prefixes and shrunk re-written variants) into <dir> and exits.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "format/program_desc.h"
#include "fuzz/fuzz_program.h"
#include "fuzz/fuzz_util.h"

const pif_fuzz::ProgramFormat& pif_fuzz::program_format() {
  static const ProgramFormat f = {"fuzz_pdmodel",
                                  "fuzz.pdmodel",
                                  "fuzz.rewritten.pdmodel",
                                  "program",
                                  ".pdmodel",
                                  false,
                                  {64, 1024, 16384},
                                  300000,
                                  pif::parse_program_desc,
                                  pif::write_program_desc};
  return f;
}

std::vector<std::pair<std::string, std::string>> pif_fuzz::builtin_program_seeds() {
  std::vector<std::pair<std::string, std::string>> seeds;
  for (const auto& spec : builtin_programs())
    seeds.emplace_back(std::string("builtin_") + spec.label + ".pdmodel", encode_program(spec));
  return seeds;
}
