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

namespace {

const pif_fuzz::ProgramFormat kFormat = {"fuzz_pdmodel",
                                         "fuzz.pdmodel",
                                         "fuzz.rewritten.pdmodel",
                                         "program",
                                         ".pdmodel",
                                         false,
                                         {64, 1024, 16384},
                                         300000,
                                         pif::parse_program_desc,
                                         pif::write_program_desc};

void make_seeds(const std::string& out) {
  std::vector<std::pair<std::string, std::string>> builtin;
  for (const auto& spec : pif_fuzz::builtin_programs())
    builtin.emplace_back(std::string("builtin_") + spec.label + ".pdmodel",
                         pif_fuzz::encode_program(spec));
  pif_fuzz::make_program_seeds(out, kFormat, builtin);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pif_fuzz::run_seed_mode(make_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pif_fuzz::check_program_input(data, size, kFormat);
}
