// Corruption tests for the model readers (issue 2, section 4): for each model
// directory given, load its files into memory, then truncate, extend and flip
// bytes of the program and parameter files and run the in-memory readers
// (parse program, bind params, fold constants) on every case. Each case must
// end in a valid model or a pif::ModelError with a known code whose file and
// message name the damaged file; truncated or extended params must never be
// accepted. Anything else (another exception, a sanitizer report, a crash) is
// a failure: the case is described on stderr and its files are saved.
//
// Built with ASan+UBSan by scripts/corrupt-check.sh (native/fuzz/CMakeLists.txt).
//
//   corrupt_check [--seed N] [--flips N] [--budget SECONDS] [--save DIR]
//                 [--json FILE] MODEL_DIR...
//
// --budget is the wall-clock budget per model directory (default 20 s); the
// planned cases of each phase run in a seeded random order until the phase's
// share of the budget is spent, so big files are sampled, small ones covered.
#include <sanitizer/common_interface_defs.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "format/model_dir.h"
#include "format/params.h"
#include "format/pir_json.h"
#include "format/program_desc.h"
#include "fuzz/fuzz_util.h"
#include "graph/ir.h"
#include "passes/constant_fold.h"

namespace {

using Clock = std::chrono::steady_clock;

struct CheckFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------
// The model held in memory, and one corrupted variant of it.

struct ModelFiles {
  std::string dir;
  std::string program_file;
  std::string program;  // bytes
  bool is_json = false;
  pif::ParamsLayout layout = pif::ParamsLayout::None;
  std::string params_file;                 // Combined
  std::string params;                      // Combined bytes
  std::map<std::string, std::string> sep;  // Separate: param name -> bytes
};

struct Case {
  std::string phase;  // "prog-trunc", "prog-flip", ...
  std::string what;   // human description
  const std::string* program = nullptr;
  const std::string* params = nullptr;                      // Combined
  const std::map<std::string, std::string>* sep = nullptr;  // Separate
  bool expect_error = false;                                // truncated / extended params
  // Params-only cases: bind into this already-parsed program (its params are
  // reset to `fresh_params` first) instead of re-parsing the program bytes.
  pif::Program* reuse = nullptr;
  const std::vector<pif::Parameter>* fresh_params = nullptr;
};

enum class Outcome { Valid, TypedError, Failure };

struct Result {
  Outcome outcome = Outcome::Valid;
  std::string code;
  std::string message;
};

bool looks_like_json(const std::string& b) {
  for (char c : b) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{';
  }
  return false;
}

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string join(const std::string& a, const std::string& b) { return a + "/" + b; }

// The in-memory equivalent of load_model for `m`'s layout, on `c`'s bytes.
Result run_pipeline(const ModelFiles& m, const Case& c, const pif::LoadLimits& limits,
                    std::set<std::string>* allowed_files) {
  Result r;
  try {
    pif::Program parsed;
    if (c.reuse == nullptr) {
      parsed =
          m.is_json
              ? pif::parse_pir_json(u8(*c.program), c.program->size(), m.program_file, limits)
              : pif::parse_program_desc(u8(*c.program), c.program->size(), m.program_file, limits);
    } else {
      c.reuse->params = *c.fresh_params;
    }
    pif::Program& p = c.reuse != nullptr ? *c.reuse : parsed;
    if (m.layout == pif::ParamsLayout::Combined) {
      pif::bind_combined_params(&p, u8(*c.params), c.params->size(), m.params_file, limits);
    } else if (m.layout == pif::ParamsLayout::Separate && !p.params.empty()) {
      std::vector<uint64_t> offsets;
      auto arena = pif::plan_param_arena(&p, m.dir, limits, &offsets);
      for (size_t k = 0; k < p.params.size(); ++k) {
        std::string file = join(m.dir, p.params[k].name);
        auto it = c.sep->find(p.params[k].name);
        if (it == c.sep->end()) {
          // load_model would fail to open the file: a typed NotFound there.
          throw pif::ModelError(pif::code::kNotFound, file, -1, "", "(simulated) missing file");
        }
        allowed_files->insert(file);
        pif::bind_separate_param(&p, k, u8(it->second), it->second.size(), file, limits, arena,
                                 offsets[k]);
      }
    }
    if (m.layout != pif::ParamsLayout::None) pif_fuzz::check_params(p, false);
    if (c.reuse == nullptr) pif::fold_constants(&p);  // params do not change folding
    r.outcome = Outcome::Valid;
  } catch (const pif::ModelError& e) {
    r.code = e.code();
    r.message = e.what();
    r.outcome = Outcome::TypedError;
    std::string bad;
    if (!pif_fuzz::known_code(e.code()))
      bad = "unknown error code '" + e.code() + "'";
    else if (e.file().empty())
      bad = "error names no file";
    else if (!allowed_files->count(e.file()))
      bad = "error names unexpected file '" + e.file() + "'";
    else if (r.message.find(e.file()) == std::string::npos)
      bad = "message does not name the file";
    if (!bad.empty()) {
      r.outcome = Outcome::Failure;
      r.message = bad + ": " + r.message;
    }
  } catch (const CheckFailure& e) {
    r.outcome = Outcome::Failure;
    r.message = std::string("invariant violated: ") + e.what();
  } catch (const std::exception& e) {
    r.outcome = Outcome::Failure;
    r.message = std::string("non-ModelError exception: ") + e.what();
  } catch (...) {
    r.outcome = Outcome::Failure;
    r.message = "unknown exception type";
  }
  if (c.expect_error && r.outcome == Outcome::Valid) {
    r.outcome = Outcome::Failure;
    r.message = "truncated/extended params were accepted as a valid model";
  }
  return r;
}

// ---------------------------------------------------------------------------
// Saving reproducers (also from the sanitizer death callback).

std::string g_save_dir = "/tmp/pif-corrupt";
const ModelFiles* g_model = nullptr;
const Case* g_case = nullptr;
std::string g_fixture;
int g_saved = 0;
uint64_t g_seed = 0;

std::string base_name(const std::string& path) {
  size_t k = path.find_last_of('/');
  return k == std::string::npos ? path : path.substr(k + 1);
}

// Saves the case as a loadable model directory (original file names), plus a
// description: `corrupt_check <dir>` or load_model(<dir>) reproduces it.
void save_case(const char* why) {
  if (g_model == nullptr || g_case == nullptr) return;
  const ModelFiles& m = *g_model;
  const Case& c = *g_case;
  std::string dir = join(g_save_dir, pif_fuzz::sanitize_name(g_fixture + "-" + c.phase + "-" +
                                                             std::to_string(g_saved++)));
  std::string cmd = "mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) return;
  pif_fuzz::write_file(join(dir, base_name(m.program_file)), *c.program);
  if (c.params != nullptr && m.layout == pif::ParamsLayout::Combined) {
    pif_fuzz::write_file(join(dir, base_name(m.params_file)), *c.params);
  } else if (c.sep != nullptr && m.layout == pif::ParamsLayout::Separate) {
    for (const auto& kv : *c.sep)
      if (kv.first.find('/') == std::string::npos)
        pif_fuzz::write_file(join(dir, kv.first), kv.second);
  }
  std::string desc = "fixture: " + m.dir + "\ncase: " + c.phase + " " + c.what + " (seed " +
                     std::to_string(g_seed) + ")" + "\nwhy: " + (why ? why : "") +
                     "\nmodel directory: " + dir + "\n";
  pif_fuzz::write_file(dir + ".txt", desc);
  std::fprintf(stderr, "corrupt_check: reproducer saved: %s (%s.txt)\n%s", dir.c_str(), dir.c_str(),
               desc.c_str());
}

void on_sanitizer_death() {
  std::fprintf(stderr, "corrupt_check: sanitizer report while running the case below\n");
  save_case("sanitizer report (see above)");
}

void die_hook(const char* msg) { throw CheckFailure(msg); }

// ---------------------------------------------------------------------------
// Case generation.

struct Stats {
  size_t cases = 0, valid = 0, errors = 0, failures = 0, planned = 0;
  std::map<std::string, size_t> codes;
  std::map<std::string, size_t> phase_cases;
  double seconds = 0;
};

struct Runner {
  const ModelFiles& m;
  pif::LoadLimits limits;
  std::set<std::string> allowed;
  Stats st;
  size_t saved_here = 0;

  void run(const Case& c) {
    g_case = &c;
    Result r = run_pipeline(m, c, limits, &allowed);
    ++st.cases;
    ++st.phase_cases[c.phase];
    switch (r.outcome) {
      case Outcome::Valid: ++st.valid; break;
      case Outcome::TypedError:
        ++st.errors;
        ++st.codes[r.code];
        break;
      case Outcome::Failure:
        ++st.failures;
        std::fprintf(stderr, "corrupt_check: FAILURE %s %s: %s\n", c.phase.c_str(), c.what.c_str(),
                     r.message.c_str());
        if (saved_here++ < 20) save_case(r.message.c_str());
        break;
    }
    g_case = nullptr;
  }
};

std::vector<size_t> truncation_offsets(size_t size, size_t all_below, size_t head, size_t spread,
                                       const std::vector<size_t>& extra) {
  std::set<size_t> s;
  if (size <= all_below) {
    for (size_t i = 0; i < size; ++i) s.insert(i);
  } else {
    for (size_t i = 0; i < std::min(head, size); ++i) s.insert(i);
    for (size_t k = 0; k < spread; ++k) s.insert(static_cast<size_t>((size * (k + 0.5)) / spread));
    for (size_t i = size > 64 ? size - 64 : 0; i < size; ++i) s.insert(i);
  }
  for (size_t e : extra)
    if (e < size) s.insert(e);
  return std::vector<size_t>(s.begin(), s.end());
}

const char* kInterestingNumbers[] = {"0",
                                     "-1",
                                     "-2",
                                     "2147483647",
                                     "2147483648",
                                     "-2147483649",
                                     "4294967296",
                                     "9223372036854775807",
                                     "9223372036854775808",
                                     "-9223372036854775809",
                                     "99999999999999999999",
                                     "1e308",
                                     "-1e308",
                                     "1e999",
                                     "0.5",
                                     "-0",
                                     "1.5e10",
                                     "65536",
                                     "1e-400",
                                     "\"x\"",
                                     "null",
                                     "[]",
                                     "{}",
                                     "true"};

// One seeded mutation of `src` (never identical to it).
std::string mutate(const std::string& src, std::mt19937_64& rng, bool json,
                   const std::vector<std::pair<size_t, size_t>>& hot, std::string* what) {
  std::string s = src;
  if (s.empty()) return s;
  auto pick = [&]() -> size_t {
    if (!hot.empty() && rng() % 2 == 0) {
      const auto& h = hot[rng() % hot.size()];
      return h.first + rng() % std::max<size_t>(1, h.second - h.first);
    }
    return rng() % s.size();
  };
  unsigned kind = rng() % 100;
  if (kind < 55) {
    size_t pos = pick();
    uint8_t x = static_cast<uint8_t>(1 + rng() % 255);
    s[pos] = static_cast<char>(static_cast<uint8_t>(s[pos]) ^ x);
    *what = "xor byte " + std::to_string(pos) + " with " + std::to_string(x);
  } else if (kind < 75) {
    static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x12, 0x22,
                                   '{',  '}',  '"',  ',',  '-',  '9',  '[',  ']'};
    size_t pos = pick();
    uint8_t v = vals[rng() % sizeof vals];
    if (static_cast<uint8_t>(s[pos]) == v) v = static_cast<uint8_t>(v ^ 0x40);
    s[pos] = static_cast<char>(v);
    *what = "set byte " + std::to_string(pos) + " to " + std::to_string(v);
  } else if (kind < 90) {
    int n = 2 + static_cast<int>(rng() % 7);
    *what = "randomise bytes";
    for (int i = 0; i < n; ++i) {
      size_t pos = pick();
      s[pos] = static_cast<char>(rng() & 0xff);
      *what += " " + std::to_string(pos);
    }
  } else if (json) {
    // Replace a number token near a random position with an extreme value.
    size_t pos = rng() % s.size();
    size_t i = pos;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9')) ++i;
    if (i >= s.size()) i = pos;
    size_t b = i, e = i;
    while (b > 0 && (std::isdigit(static_cast<unsigned char>(s[b - 1])) || s[b - 1] == '-' ||
                     s[b - 1] == '.' || s[b - 1] == 'e'))
      --b;
    while (e < s.size() && (std::isdigit(static_cast<unsigned char>(s[e])) || s[e] == '.' ||
                            s[e] == 'e' || s[e] == '-' || s[e] == '+'))
      ++e;
    const char* rep = kInterestingNumbers[rng() % (sizeof kInterestingNumbers / sizeof(char*))];
    s.replace(b, e - b, rep);
    *what = "replace number at " + std::to_string(b) + " with " + rep;
  } else {
    // Overwrite with continuation bytes: huge / over-long varints.
    size_t pos = pick();
    int n = 1 + static_cast<int>(rng() % 10);
    for (int i = 0; i < n && pos + i < s.size(); ++i) s[pos + i] = static_cast<char>(0xff);
    *what = "varint 0xff x" + std::to_string(n) + " at " + std::to_string(pos);
  }
  if (s == src) {
    s[0] = static_cast<char>(s[0] ^ 1);
    *what += " (+xor byte 0)";
  }
  return s;
}

// Record spans [start, data_offset) of a valid params buffer: the headers.
std::vector<std::pair<size_t, size_t>> record_headers(const std::string& buf,
                                                      std::vector<size_t>* boundaries) {
  std::vector<std::pair<size_t, size_t>> hot;
  size_t pos = 0;
  boundaries->push_back(0);
  try {
    while (pos < buf.size()) {
      size_t start = pos;
      pif::TensorRecord r =
          pif::read_tensor_record(u8(buf), buf.size(), &pos, "baseline", "", pif::LoadLimits());
      hot.emplace_back(start, static_cast<size_t>(r.data_offset));
      boundaries->push_back(pos);
    }
  } catch (const pif::ModelError&) {
  }
  return hot;
}

// Runs `n` cases (built lazily by index) in a seeded random order until done
// or, once at least `min_cases` ran, the deadline passes. Returns how many ran.
template <class Make>
size_t run_phase(Runner& rn, size_t n, size_t min_cases, Clock::time_point deadline,
                 std::mt19937_64& rng, Make make) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  rn.st.planned += n;
  size_t ran = 0;
  for (size_t i : order) {
    if (ran >= min_cases && (ran & 7) == 0 && Clock::now() > deadline) break;
    make(i);
    ++ran;
  }
  return ran;
}

struct Options {
  uint64_t seed = 20240601;
  size_t flips = 2000;
  double budget = 20;
  std::string json;
};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}

bool check_fixture(const std::string& dir, const Options& opt, std::string* json_out) {
  const auto t0 = Clock::now();
  ModelFiles m;
  m.dir = dir;
  pif::LoadOptions lo;
  lo.require_params = false;
  pif::LoadedModel base;
  try {
    base = pif::load_model(dir, lo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corrupt_check: %s: baseline load failed: %s\n", dir.c_str(), e.what());
    *json_out = "{\"dir\":\"" + json_escape(dir) + "\",\"baseline_error\":\"" +
                json_escape(e.what()) + "\"}";
    return false;
  }
  m.program_file = base.program_file;
  m.layout = base.params_layout;
  m.params_file = base.params_file;
  if (!pif_fuzz::read_file(m.program_file, &m.program)) {
    std::fprintf(stderr, "corrupt_check: cannot read %s\n", m.program_file.c_str());
    return false;
  }
  m.is_json = looks_like_json(m.program);
  if (m.layout == pif::ParamsLayout::Combined) {
    pif_fuzz::read_file(m.params_file, &m.params);
  } else if (m.layout == pif::ParamsLayout::Separate) {
    for (const auto& prm : base.program.params) {
      std::string b;
      if (pif_fuzz::read_file(join(m.dir, prm.name), &b)) m.sep[prm.name] = b;
    }
  }
  base = pif::LoadedModel();
  g_model = &m;
  g_fixture =
      dir.substr(dir.find_last_of('/') == std::string::npos ? 0 : dir.find_last_of('/') + 1);

  Runner rn{m, pif_fuzz::small_limits(), {}, {}, 0};
  rn.limits.max_file_bytes = 64ull << 20;
  rn.limits.max_tensor_bytes = 256ull << 20;
  rn.limits.max_total_param_bytes = 1ull << 30;
  rn.allowed = {m.program_file, m.params_file, m.dir};
  std::mt19937_64 rng(opt.seed ^ std::hash<std::string>()(g_fixture));
  // Each mutation case draws from its own generator, so case i of a phase is
  // the same whatever the time budget let earlier phases run.
  auto case_rng = [&](const char* phase, size_t i) {
    std::seed_seq seq{static_cast<uint64_t>(opt.seed), static_cast<uint64_t>(i),
                      static_cast<uint64_t>(std::hash<std::string>()(g_fixture + phase))};
    return std::mt19937_64(seq);
  };

  // Baseline through the in-memory pipeline: must be valid.
  {
    Case c{"baseline", "unmodified", &m.program, &m.params, &m.sep, false};
    auto b0 = Clock::now();
    Result r = run_pipeline(m, c, rn.limits, &rn.allowed);
    double dt = std::chrono::duration<double>(Clock::now() - b0).count();
    if (r.outcome != Outcome::Valid) {
      std::fprintf(stderr, "corrupt_check: %s: baseline (in memory) not valid: %s\n", dir.c_str(),
                   r.message.c_str());
      *json_out = "{\"dir\":\"" + json_escape(dir) + "\",\"baseline_error\":\"" +
                  json_escape(r.message) + "\"}";
      return false;
    }
    std::printf("%s: program %s (%zu bytes), params %s, baseline %.0f ms\n", g_fixture.c_str(),
                m.program_file.c_str(), m.program.size(),
                m.layout == pif::ParamsLayout::Combined   ? "combined"
                : m.layout == pif::ParamsLayout::Separate ? "separate"
                                                          : "none",
                dt * 1000);
  }

  const bool has_params = m.layout != pif::ParamsLayout::None;
  pif::Program work;
  std::vector<pif::Parameter> fresh_params;
  if (has_params) {
    work =
        m.is_json
            ? pif::parse_pir_json(u8(m.program), m.program.size(), m.program_file, rn.limits)
            : pif::parse_program_desc(u8(m.program), m.program.size(), m.program_file, rn.limits);
    fresh_params = work.params;
  }
  const double budget = opt.budget;
  const double share_trunc = has_params ? 0.30 : 0.45;
  const double share_flip = has_params ? 0.45 : 0.55;
  auto deadline_after = [&](double frac) {
    return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(budget * frac * 1000));
  };
  std::map<std::string, std::pair<size_t, size_t>> ran_of_planned;

  // (a) program truncations.
  {
    std::vector<size_t> offs = truncation_offsets(m.program.size(), 65536, 4096, 2000, {});
    auto dl = deadline_after(share_trunc);
    std::string buf;
    size_t ran = run_phase(rn, offs.size(), m.program.size() <= 65536 ? offs.size() : 200, dl, rng,
                           [&](size_t i) {
                             buf.assign(m.program, 0, offs[i]);
                             Case c{"prog-trunc", "truncate program at " + std::to_string(offs[i]),
                                    &buf,         &m.params,
                                    &m.sep,       false};
                             rn.run(c);
                           });
    ran_of_planned["prog-trunc"] = {ran, offs.size()};
  }
  // (b) program flips.
  {
    auto dl = deadline_after(share_flip);
    std::string buf;
    size_t ran = run_phase(rn, opt.flips, 50, dl, rng, [&](size_t i) {
      std::string what;
      auto r = case_rng("prog-flip", i);
      buf = mutate(m.program, r, m.is_json, {}, &what);
      Case c{"prog-flip", what, &buf, &m.params, &m.sep, false};
      rn.run(c);
    });
    ran_of_planned["prog-flip"] = {ran, opt.flips};
  }
  // (c) params: flips, truncations, extensions.
  if (m.layout == pif::ParamsLayout::Combined) {
    std::vector<size_t> bounds;
    auto hot = record_headers(m.params, &bounds);
    auto dl = deadline_after(0.125);
    std::string buf;
    size_t ran = run_phase(rn, opt.flips, 50, dl, rng, [&](size_t i) {
      std::string what;
      auto r = case_rng("params-flip", i);
      buf = mutate(m.params, r, false, hot, &what);
      Case c{"params-flip", what, &m.program, &buf, &m.sep, false, &work, &fresh_params};
      rn.run(c);
    });
    ran_of_planned["params-flip"] = {ran, opt.flips};

    std::vector<size_t> extra;
    for (size_t b : bounds)
      for (int d : {-8, -3, -2, -1, 0, 1, 2, 3, 4, 12, 20})
        if (static_cast<int64_t>(b) + d >= 0) extra.push_back(b + d);
    for (const auto& h : hot)
      for (size_t k = h.first; k <= h.second; ++k) extra.push_back(k);
    std::vector<size_t> offs = truncation_offsets(m.params.size(), 4096, 256, 300, extra);
    std::vector<std::string> tails = {std::string(1, '\0'), std::string(8, '\0'),
                                      std::string(4096, '\0'), std::string(20, '\xff')};
    if (bounds.size() >= 2) {
      tails.push_back(m.params.substr(bounds[0], bounds[1] - bounds[0]));
      tails.push_back(m.params.substr(bounds[bounds.size() - 2]));
    }
    dl = deadline_after(0.125);
    size_t n_trunc = offs.size();
    ran = run_phase(rn, n_trunc + tails.size(), 100, dl, rng, [&](size_t i) {
      std::string what;
      if (i < n_trunc) {
        buf.assign(m.params, 0, offs[i]);
        what = "truncate params at " + std::to_string(offs[i]);
      } else {
        buf = m.params + tails[i - n_trunc];
        what = "extend params by " + std::to_string(tails[i - n_trunc].size()) + " bytes";
      }
      Case c{"params-trunc", what, &m.program, &buf, &m.sep, true, &work, &fresh_params};
      rn.run(c);
    });
    ran_of_planned["params-trunc"] = {ran, n_trunc + tails.size()};
  } else if (m.layout == pif::ParamsLayout::Separate && !m.sep.empty()) {
    std::vector<std::string> names;
    for (const auto& kv : m.sep) names.push_back(kv.first);
    // Flips spread over the files, headers favoured.
    std::map<std::string, std::vector<std::pair<size_t, size_t>>> hots;
    std::map<std::string, std::vector<size_t>> bounds;
    for (const auto& n : names) hots[n] = record_headers(m.sep.at(n), &bounds[n]);
    auto dl = deadline_after(0.125);
    std::map<std::string, std::string> sep = m.sep;
    size_t ran = run_phase(rn, opt.flips, 50, dl, rng, [&](size_t i) {
      const std::string& n = names[i % names.size()];
      std::string what;
      auto r = case_rng("params-flip", i);
      sep[n] = mutate(m.sep.at(n), r, false, hots[n], &what);
      Case c{"params-flip", n + ": " + what, &m.program, nullptr,
             &sep,          false,           &work,      &fresh_params};
      rn.run(c);
      sep[n] = m.sep.at(n);
    });
    ran_of_planned["params-flip"] = {ran, opt.flips};
    // Truncations / extensions per file.
    struct V {
      std::string name;
      size_t trunc;  // SIZE_MAX = extension
      std::string tail;
    };
    std::vector<V> vs;
    for (const auto& n : names) {
      const std::string& b = m.sep.at(n);
      std::vector<size_t> extra;
      for (const auto& h : hots[n])
        for (size_t k = h.first; k <= h.second; ++k) extra.push_back(k);
      for (size_t o : truncation_offsets(b.size(), 4096, 256, 200, extra)) vs.push_back({n, o, ""});
      for (const std::string& t : {std::string(1, '\0'), std::string(8, '\0'), b})
        vs.push_back({n, SIZE_MAX, t});
    }
    dl = deadline_after(0.125);
    ran = run_phase(rn, vs.size(), 100, dl, rng, [&](size_t i) {
      const V& v = vs[i];
      const std::string& b = m.sep.at(v.name);
      std::string what;
      if (v.trunc != SIZE_MAX) {
        sep[v.name] = b.substr(0, v.trunc);
        what = v.name + ": truncate at " + std::to_string(v.trunc);
      } else {
        sep[v.name] = b + v.tail;
        what = v.name + ": extend by " + std::to_string(v.tail.size()) + " bytes";
      }
      Case c{"params-trunc", what, &m.program, nullptr, &sep, true, &work, &fresh_params};
      rn.run(c);
      sep[v.name] = b;
    });
    ran_of_planned["params-trunc"] = {ran, vs.size()};
    // A missing parameter file.
    sep.erase(names[0]);
    Case c{"params-missing", "without " + names[0], &m.program, nullptr, &sep, true, &work,
           &fresh_params};
    rn.run(c);
    ran_of_planned["params-missing"] = {1, 1};
  }

  rn.st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const Stats& st = rn.st;
  std::printf("%s: %zu cases (", g_fixture.c_str(), st.cases);
  bool first = true;
  for (const auto& kv : ran_of_planned) {
    std::printf("%s%s %zu/%zu", first ? "" : ", ", kv.first.c_str(), kv.second.first,
                kv.second.second);
    first = false;
  }
  std::printf("), typed errors %zu {", st.errors);
  first = true;
  for (const auto& kv : st.codes) {
    std::printf("%s%s: %zu", first ? "" : ", ", kv.first.c_str(), kv.second);
    first = false;
  }
  std::printf("}, valid %zu, failures %zu, %.1f s\n", st.valid, st.failures, st.seconds);
  std::fflush(stdout);

  std::string j = "{\"dir\":\"" + json_escape(dir) + "\",\"cases\":" + std::to_string(st.cases) +
                  ",\"typed_errors\":" + std::to_string(st.errors) +
                  ",\"valid\":" + std::to_string(st.valid) +
                  ",\"failures\":" + std::to_string(st.failures) + ",\"codes\":{";
  first = true;
  for (const auto& kv : st.codes) {
    j += (first ? "\"" : ",\"") + kv.first + "\":" + std::to_string(kv.second);
    first = false;
  }
  j += "},\"phases\":{";
  first = true;
  for (const auto& kv : ran_of_planned) {
    j += (first ? "\"" : ",\"") + kv.first + "\":{\"ran\":" + std::to_string(kv.second.first) +
         ",\"planned\":" + std::to_string(kv.second.second) + "}";
    first = false;
  }
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f", st.seconds);
  j += std::string("},\"seconds\":") + secs + "}";
  *json_out = j;
  g_model = nullptr;
  return st.failures == 0;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: corrupt_check [--seed N] [--flips N] [--budget SECONDS] [--save DIR] "
               "[--json FILE] MODEL_DIR...\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--seed")
      opt.seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--flips")
      opt.flips = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--budget")
      opt.budget = std::strtod(next().c_str(), nullptr);
    else if (a == "--save")
      g_save_dir = next();
    else if (a == "--json")
      opt.json = next();
    else if (a == "-h" || a == "--help")
      usage();
    else if (!a.empty() && a[0] == '-')
      usage();
    else
      dirs.push_back(a);
  }
  if (dirs.empty()) usage();
  g_seed = opt.seed;
  __sanitizer_set_death_callback(on_sanitizer_death);
  pif_fuzz::g_die_hook = die_hook;

  bool ok = true;
  std::string json = "{\"seed\":" + std::to_string(opt.seed) + ",\"fixtures\":[";
  for (size_t i = 0; i < dirs.size(); ++i) {
    std::string j;
    if (!check_fixture(dirs[i], opt, &j)) ok = false;
    json += (i ? "," : "") + j;
  }
  json += std::string("],\"ok\":") + (ok ? "true" : "false") + "}\n";
  if (!opt.json.empty()) pif_fuzz::write_file(opt.json, json);
  std::printf("corrupt_check: %s\n",
              ok ? "all cases ended in a valid model or a typed error" : "FAILURES (see above)");
  return ok ? 0 : 1;
}
