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
#include <string>

#include "format/pir_json.h"
#include "fuzz/fuzz_program.h"
#include "fuzz/fuzz_util.h"

namespace {

const pif_fuzz::ProgramFormat kFormat = {"fuzz_pir_json",
                                         "fuzz.inference.json",
                                         "fuzz.rewritten.json",
                                         "JSON",
                                         ".json",
                                         true,
                                         {200, 4096, 32768},
                                         300000,
                                         pif::parse_pir_json,
                                         pif::write_pir_json};

void make_seeds(const std::string& out) {
  pif_fuzz::make_program_seeds(out, kFormat, pif_fuzz::builtin_pir_seeds());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pif_fuzz::run_seed_mode(make_seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pif_fuzz::check_program_input(data, size, kFormat);
}
