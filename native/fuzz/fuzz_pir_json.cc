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

const pif_fuzz::ProgramFormat& pif_fuzz::program_format() {
  static const ProgramFormat f = {"fuzz_pir_json",
                                  "fuzz.inference.json",
                                  "fuzz.rewritten.json",
                                  "JSON",
                                  ".json",
                                  true,
                                  {200, 4096, 32768},
                                  300000,
                                  pif::parse_pir_json,
                                  pif::write_pir_json};
  return f;
}

std::vector<std::pair<std::string, std::string>> pif_fuzz::builtin_program_seeds() {
  return builtin_pir_seeds();
}
