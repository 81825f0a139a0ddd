// The native test harness: test cases registered with PIF_TEST(suite, name), checks that record
// file:line and a message, and one main (harness.cc) that runs all cases or a filter, prints
// PASS/FAIL per case and a summary, and exits non-zero on any failure. CMakeLists.txt builds
// every native/tests/*.cc into the one program pif_tests and registers its suites with ctest.
//
//   pif_tests [--list] [--filter PATTERN[:PATTERN...]] [--seed N] [--cases N] [--threads N]
//             [--verbose] [--isa-caps]
//
// PATTERN matches "suite.name" with * as a wildcard. --seed and --cases replace every suite's
// default seed and case count. Randomised suites report per op: cases, failures, max error.
// When ONEDNN_MAX_CPU_ISA names a cap this CPU lacks (/proc/cpuinfo), the program prints why
// and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE).
#pragma once

#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace pif::test {

using TestFn = void (*)();

// Registers a case; cases run ordered by file name, then line (so a suite split into
// numbered files draws its random cases in the same order on every build).
int register_test(const char* suite, const char* name, TestFn fn, const char* file, int line);

// Records a failure of the running case (file:line and message) and prints it.
void fail_at(const char* file, int line, const std::string& msg);
// Records a failure of the running case without a source location (randomised cases name
// their op and case instead).
void fail(const std::string& msg);
// The number of failures recorded so far in the running case.
int failures();
// Ends the running case as skipped.
[[noreturn]] void skip(const std::string& why);

// Options from the command line, or the suite's default.
uint64_t seed_or(uint64_t dflt);
int cases_or(int dflt);
int threads_or(int dflt);
bool verbose();

// Per-op statistics of a randomised case, printed as a table when the case ends.
struct OpStats {
  int cases = 0, failures = 0;
  double max_err = 0;
};
OpStats& op_stats(const std::string& op);
// Records one checked case of `op`: `why` empty = passed.
void record(const std::string& op, const std::string& desc, double err, const std::string& why);
// Runs `body`; an exception is a failure of the case `desc` of `op`.
void guarded(const std::string& op, const std::string& desc, const std::function<void()>& body);
// Expects `body` to throw pif::ModelError (a case of `op`).
void expect_model_error(const std::string& op, const std::string& desc,
                        const std::function<void()>& body);

// The oneDNN ISA caps this CPU can run, lowest first (from /proc/cpuinfo flags).
std::vector<std::string> cpu_isa_caps();

}  // namespace pif::test

#define PIF_TEST_CAT2(a, b) a##b
#define PIF_TEST_CAT(a, b) PIF_TEST_CAT2(a, b)
#define PIF_TEST(suite, name)                                                                   \
  static void pif_test_##suite##_##name();                                                      \
  [[maybe_unused]] static const int PIF_TEST_CAT(pif_test_reg_, __LINE__) =                     \
      ::pif::test::register_test(#suite, #name, pif_test_##suite##_##name, __FILE__, __LINE__); \
  static void pif_test_##suite##_##name()

// Checks: a failure records file:line, the condition and an optional message; the case goes on.
#define PIF_CHECK(cond)                                           \
  do {                                                            \
    if (!(cond)) ::pif::test::fail_at(__FILE__, __LINE__, #cond); \
  } while (0)
#define PIF_CHECK_MSG(cond, msg)                                     \
  do {                                                               \
    if (!(cond)) {                                                   \
      std::ostringstream pif_check_msg;                              \
      pif_check_msg << #cond << ": " << msg;                         \
      ::pif::test::fail_at(__FILE__, __LINE__, pif_check_msg.str()); \
    }                                                                \
  } while (0)
