// The harness's registry, checks and main (see harness.h).
#include "tests/harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "common/error.h"

namespace pif::test {
namespace {

struct TestCase {
  std::string suite, name, file;
  int line;
  TestFn fn;
  std::string full() const { return suite + "." + name; }
};

std::vector<TestCase>& registry() {
  static std::vector<TestCase> r;
  return r;
}

struct Options {
  bool has_seed = false, verbose = false;
  uint64_t seed = 0;
  int cases = -1, threads = -1;
};
Options g_opt;

struct SkipCase {
  std::string why;
};

// State of the running case.
int g_case_failures = 0;
std::map<std::string, OpStats> g_stats;

bool glob(const char* p, const char* s) {
  if (*p == 0) return *s == 0;
  if (*p == '*') return glob(p + 1, s) || (*s && glob(p, s + 1));
  return *s && *p == *s && glob(p + 1, s + 1);
}

bool selected(const std::string& name, const std::string& filter) {
  if (filter.empty()) return true;
  size_t from = 0;
  while (from <= filter.size()) {
    size_t to = filter.find(':', from);
    if (to == std::string::npos) to = filter.size();
    if (glob(filter.substr(from, to - from).c_str(), name.c_str())) return true;
    from = to + 1;
  }
  return false;
}

void print_stats() {
  if (g_stats.empty()) return;
  std::printf("  %-26s %7s %9s %12s\n", "op", "cases", "failures", "max error");
  for (const auto& kv : g_stats)
    std::printf("  %-26s %7d %9d %12.3g\n", kv.first.c_str(), kv.second.cases, kv.second.failures,
                kv.second.max_err);
}

int usage() {
  std::cerr << "usage: pif_tests [--list] [--filter PATTERN[:PATTERN...]] [--seed N] [--cases N] "
               "[--threads N] [--verbose] [--isa-caps]\n";
  return 2;
}

}  // namespace

int register_test(const char* suite, const char* name, TestFn fn, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  registry().push_back(TestCase{suite, name, base ? base + 1 : file, line, fn});
  return 0;
}

void fail(const std::string& msg) {
  ++g_case_failures;
  std::cout << "FAIL " << msg << "\n";
}

void fail_at(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  fail(std::string(base ? base + 1 : file) + ":" + std::to_string(line) + ": " + msg);
}

int failures() { return g_case_failures; }

void skip(const std::string& why) { throw SkipCase{why}; }

uint64_t seed_or(uint64_t dflt) { return g_opt.has_seed ? g_opt.seed : dflt; }
int cases_or(int dflt) { return g_opt.cases >= 0 ? g_opt.cases : dflt; }
int threads_or(int dflt) { return g_opt.threads > 0 ? g_opt.threads : dflt; }
bool verbose() { return g_opt.verbose; }

OpStats& op_stats(const std::string& op) { return g_stats[op]; }

void record(const std::string& op, const std::string& desc, double err, const std::string& why) {
  OpStats& st = g_stats[op];
  ++st.cases;
  if (!std::isnan(err)) st.max_err = std::max(st.max_err, err);
  if (!why.empty()) {
    ++st.failures;
    fail(op + " " + desc + ": " + why);
  } else if (g_opt.verbose) {
    std::cout << "ok   " << op << " " << desc << "\n";
  }
}

void guarded(const std::string& op, const std::string& desc, const std::function<void()>& body) {
  try {
    body();
  } catch (const ModelError& e) {
    record(op, desc + " [" + e.code() + " " + e.where() + ": " + e.detail() + "]", 0,
           std::string("exception: ") + e.what());
  } catch (const std::exception& e) {
    record(op, desc, 0, std::string("exception: ") + e.what());
  }
}

void expect_model_error(const std::string& op, const std::string& desc,
                        const std::function<void()>& body) {
  std::string why;
  try {
    body();
    why = "no error";
  } catch (const ModelError& e) {
    if (g_opt.verbose) std::cout << "     (" << e.code() << " " << e.detail() << ")\n";
  } catch (const std::exception& e) {
    why = std::string("threw a non-ModelError: ") + e.what();
  }
  record(op, desc, 0, why);
}

std::vector<std::string> cpu_isa_caps() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) {
      flags = " " + line.substr(line.find(':') + 1) + " ";
      break;
    }
  auto has = [&](std::initializer_list<const char*> need) {
    for (const char* n : need)
      if (flags.find(std::string(" ") + n + " ") == std::string::npos) return false;
    return true;
  };
  std::vector<std::string> caps;
  auto add = [&](const char* cap, bool ok) {
    if (ok) caps.push_back(cap);
  };
  bool avx512 = has({"avx512f", "avx512cd", "avx512bw", "avx512vl", "avx512dq"});
  bool vnni = avx512 && has({"avx512_vnni"}), bf16 = vnni && has({"avx512_bf16"});
  add("SSE41", has({"sse4_1"}));
  add("AVX", has({"avx"}));
  add("AVX2", has({"avx2", "fma"}));
  add("AVX2_VNNI", has({"avx2", "fma", "avx_vnni"}));
  add("AVX512_CORE", avx512);
  add("AVX512_CORE_VNNI", vnni);
  add("AVX512_CORE_BF16", bf16);
  add("AVX512_CORE_AMX", bf16 && has({"amx_tile", "amx_int8", "amx_bf16"}));
  return caps;
}

}  // namespace pif::test

int main(int argc, char** argv) {
  using namespace pif::test;
  std::string filter;
  bool list = false;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    bool more = k + 1 < argc;
    if (a == "--list") {
      list = true;
    } else if (a == "--filter" && more) {
      filter = argv[++k];
    } else if (a == "--seed" && more) {
      g_opt.has_seed = true;
      g_opt.seed = std::stoull(argv[++k]);
    } else if (a == "--cases" && more) {
      g_opt.cases = std::stoi(argv[++k]);
    } else if (a == "--threads" && more) {
      g_opt.threads = std::stoi(argv[++k]);
    } else if (a == "--verbose") {
      g_opt.verbose = true;
    } else if (a == "--isa-caps") {
      for (const std::string& c : cpu_isa_caps()) std::cout << c << "\n";
      return 0;
    } else {
      return usage();
    }
  }
  std::vector<TestCase> tests = registry();
  std::stable_sort(tests.begin(), tests.end(), [](const TestCase& a, const TestCase& b) {
    return a.file != b.file ? a.file < b.file : a.line < b.line;
  });
  tests.erase(std::remove_if(tests.begin(), tests.end(),
                             [&](const TestCase& t) { return !selected(t.full(), filter); }),
              tests.end());
  if (list) {
    for (const TestCase& t : tests) std::cout << t.full() << "\n";
    return 0;
  }
  if (tests.empty()) {
    std::cerr << "pif_tests: no test matches '" << filter << "'\n";
    return 2;
  }
  if (const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA")) {
    std::vector<std::string> caps = cpu_isa_caps();
    if (*cap && std::find(caps.begin(), caps.end(), cap) == caps.end()) {
      std::cout << "SKIPPED: ONEDNN_MAX_CPU_ISA=" << cap << " but this CPU lacks it\n";
      return 77;
    }
  }
  int failed = 0, skipped = 0;
  auto all_start = std::chrono::steady_clock::now();
  for (const TestCase& t : tests) {
    g_case_failures = 0;
    g_stats.clear();
    auto start = std::chrono::steady_clock::now();
    std::string verdict = "PASS";
    std::cout << "---- " << t.full() << std::endl;
    try {
      t.fn();
    } catch (const SkipCase& s) {
      verdict = "SKIP";
      std::cout << "  skipped: " << s.why << "\n";
    } catch (const std::exception& e) {
      fail_at(t.file.c_str(), t.line, std::string("uncaught exception: ") + e.what());
    }
    print_stats();
    if (g_case_failures) verdict = "FAIL";
    failed += verdict == "FAIL";
    skipped += verdict == "SKIP";
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "%s %s (%.2f s%s)\n", verdict.c_str(), t.full().c_str(), s,
        g_case_failures ? (", " + std::to_string(g_case_failures) + " failures").c_str() : "");
    std::fflush(stdout);
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - all_start).count();
  std::printf("%zu cases: %zu passed, %d failed, %d skipped (%.1f s)\n", tests.size(),
              tests.size() - failed - skipped, failed, skipped, s);
  return failed ? 1 : 0;
}
