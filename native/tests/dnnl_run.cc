// The dnnl suite's runner: each case runs on the reference kernels, with the passes, and in hpi
// mode; numbers, node names and oneDNN primitive executions are checked (dnnl.h). PIF_TEST
// dnnl.isa (the last of the suite) prints what ran where and checks that no convolution fell
// back after a refused fused primitive and that oneDNN ran at the ISA cap asked for.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <set>
#include <sstream>

#include "common/error.h"
#include "passes/fuse.h"
#include "tests/dnnl.h"

namespace pif::test {
namespace {

// oneDNN's verbose log: counts primitive executions during one run. The log
// goes to stdout; it is redirected to a temporary file meanwhile.

class DnnlTrace {
 public:
  ~DnnlTrace() { stop(); }
  void start() {
    std::cout.flush();
    std::fflush(stdout);
    tmp_ = std::tmpfile();
    if (!tmp_) throw std::runtime_error("tmpfile failed");
    saved_ = dup(1);
    dup2(fileno(tmp_), 1);
    dnnl::set_verbose(1);
  }
  // Primitive kind -> executions; `impls` gets kind -> implementation counts.
  std::map<std::string, int> stop(
      std::map<std::string, std::map<std::string, int>>* impls = nullptr) {
    std::map<std::string, int> counts;
    if (!tmp_) return counts;
    dnnl::set_verbose(0);
    std::fflush(stdout);
    dup2(saved_, 1);
    close(saved_);
    std::rewind(tmp_);
    char* line = nullptr;
    size_t cap = 0;
    while (getline(&line, &cap, tmp_) > 0) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      std::string part;
      while (f.size() < 5 && std::getline(ss, part, ',')) f.push_back(part);
      if (f.size() < 5 || f[1] != "exec") continue;
      std::string kind = f[3];  // pooling_v2, softmax_v2: same kinds
      if (kind.size() > 3 && kind.compare(kind.size() - 3, 3, "_v2") == 0)
        kind.resize(kind.size() - 3);
      ++counts[kind];
      if (impls) ++(*impls)[kind][f[4]];
    }
    std::free(line);
    std::fclose(tmp_);
    tmp_ = nullptr;
    return counts;
  }

 private:
  FILE* tmp_ = nullptr;
  int saved_ = -1;
};

// ---------------------------------------------------------------------------
// Running and checking.

struct FamilyStats {
  int cases = 0, failures = 0, known = 0;
  double err_passes = 0, err_hpi = 0;
  int maybe_nodes = 0, maybe_fast = 0;  // nodes allowed either path, and how many ran oneDNN
};
std::map<std::string, FamilyStats> g_stats;
std::map<std::string, std::map<std::string, int>> g_impls;  // primitive -> impl -> executions
std::map<std::string, std::map<std::string, int>> g_paths;  // kernel -> path -> configurations
std::map<std::string, int> g_ref_reasons;  // "kernel: reason" -> reference configurations
// Convolution configurations on the reference kernel, by what oneDNN offered.
std::map<std::string, int> g_conv_reference, g_conv_reference_by_design;
bool g_trace_ok = true;  // oneDNN's verbose log works (fast-path checks possible)

// Runs one eltwise primitive under a trace: false if oneDNN logs nothing
// (a build without verbose support).
bool probe_trace() {
  using namespace dnnl;
  engine e(engine::kind::cpu, 0);
  stream st(e);
  memory::desc md({1, 8}, memory::data_type::f32, memory::format_tag::ab);
  eltwise_forward prim(eltwise_forward::primitive_desc(
      eltwise_forward::desc(prop_kind::forward_inference, algorithm::eltwise_relu, md, 0.f), e));
  memory m(md, e);
  DnnlTrace trace;
  trace.start();
  prim.execute(st, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  st.wait();
  std::map<std::string, int> n = trace.stop();
  return n.count("eltwise") && n.at("eltwise") == 1;
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "SSE41";
    case dnnl::cpu_isa::avx: return "AVX";
    case dnnl::cpu_isa::avx2: return "AVX2";
    case dnnl::cpu_isa::avx2_vnni: return "AVX2_VNNI";
    case dnnl::cpu_isa::avx512_mic: return "AVX512_MIC";
    case dnnl::cpu_isa::avx512_mic_4ops: return "AVX512_MIC_4OPS";
    case dnnl::cpu_isa::avx512_core: return "AVX512_CORE";
    case dnnl::cpu_isa::avx512_core_vnni: return "AVX512_CORE_VNNI";
    case dnnl::cpu_isa::avx512_core_bf16: return "AVX512_CORE_BF16";
    case dnnl::cpu_isa::avx512_core_amx: return "AVX512_CORE_AMX";
    default: return "ALL/unknown";
  }
}

const std::vector<std::string>& all_passes() {
  static const std::vector<std::string> names = {
      "remove_identity", "conv_to_fused", "matmul_to_fused", "fold_transpose", "fuse_bias",
      "fold_batch_norm", "fuse_swish",    "fuse_activation", "fuse_residual"};
  return names;
}

// Max relative error of `got` vs `want`; sets `why` on a mismatch.
double compare(const std::vector<NamedTensor>& got, const std::vector<NamedTensor>& want,
               std::string* why) {
  double worst = 0;
  if (got.size() != want.size()) {
    *why = std::to_string(got.size()) + " outputs, want " + std::to_string(want.size());
    return INFINITY;
  }
  for (size_t o = 0; o < got.size(); ++o) {
    const NamedTensor& a = got[o];
    const NamedTensor& b = want[o];
    if (a.dtype != b.dtype || a.dims != b.dims || a.data.size() != b.data.size()) {
      *why = "output " + std::to_string(o) + ": dims " + dims_str(a.dims) + " want " +
             dims_str(b.dims);
      return INFINITY;
    }
    if (a.dtype != DType::Float32) continue;
    const float* p = reinterpret_cast<const float*>(a.data.data());
    const float* q = reinterpret_cast<const float*>(b.data.data());
    size_t n = a.data.size() / 4, at = 0, bad = 0;
    double err = 0;
    std::string first;  // coordinates of the first bad elements
    for (size_t k = 0; k < n; ++k) {
      double want_k = q[k];
      double e = std::fabs(static_cast<double>(p[k]) - want_k) / std::max(1.0, std::fabs(want_k));
      if (p[k] == q[k] || (std::isnan(p[k]) && std::isnan(q[k]))) e = 0;  // same inf, NaN
      if (std::isnan(e)) e = INFINITY;
      if (e > err) {
        err = e;
        at = k;
      }
      if (e > 1e-4 && ++bad <= 4) {
        std::vector<int64_t> idx(a.dims.size());
        size_t rem = k;
        for (size_t d = a.dims.size(); d-- > 0;) {
          idx[d] = static_cast<int64_t>(rem % static_cast<size_t>(a.dims[d]));
          rem /= static_cast<size_t>(a.dims[d]);
        }
        std::ostringstream s;
        s << " " << dims_str(idx) << " got " << p[k] << " want " << q[k] << ";";
        first += s.str();
      }
    }
    if (err > 1e-4 && why->empty()) {
      std::ostringstream s;
      s << "output " << o << " " << dims_str(a.dims) << ": max error " << err << " at " << at
        << ": got " << p[at] << " want " << q[at] << "; " << bad << " of " << n
        << " elements off; first:" << first;
      *why = s.str();
    }
    worst = std::max(worst, err);
  }
  return worst;
}

std::string join_sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return "{" + s + "}";
}

std::vector<std::string> node_names(const Executor& e) {
  std::vector<std::string> v;
  for (const Node& n : e.nodes()) v.push_back(n.def->name);
  return v;
}

// Runs one case; returns the failure reason ("" = passed).
std::string run_case(Case& c, Rng& r, FamilyStats& st, bool hpi_numbers) {
  std::shared_ptr<const LoadedModel> m = c.g.model();
  std::vector<NamedTensor> feeds[2] = {c.g.draw_feeds(r), c.g.draw_feeds(r)};
  int threads[2] = {c.threads, 3 - c.threads};
  std::vector<NamedTensor> want[2];
  Executor ref(m);
  for (int k = 0; k < 2; ++k) want[k] = ref.run(feeds[k], threads[k]);
  // Self-check of the generator's shape arithmetic.
  const auto& fd = c.g.fetched_dims();
  for (size_t o = 0; o < want[0].size() && o < fd.size(); ++o)
    if (want[0][o].dims != fd[o])
      return "generator: output " + std::to_string(o) + " is " + dims_str(want[0][o].dims) +
             ", expected " + dims_str(fd[o]);

  std::vector<std::string> wp, wh;
  for (const Want& w : c.want) {
    wp.push_back(w.passes);
    wh.push_back(w.hpi);
  }
  // Passes on the reference kernels.
  ExecutorOptions po;
  po.passes = all_passes();
  Executor pe(m, po);
  std::vector<std::string> got = node_names(pe);
  if (join_sorted(got) != join_sorted(wp))
    return "passes: nodes " + join_sorted(got) + ", want " + join_sorted(wp);
  for (int k = 0; k < 2; ++k) {
    std::string why;
    st.err_passes = std::max(st.err_passes, compare(pe.run(feeds[k], threads[k]), want[k], &why));
    if (!why.empty()) return "passes: " + why;
  }
  // High-performance mode.
  ExecutorOptions ho;
  ho.hpi = true;
  Executor he(m, ho);
  got = node_names(he);
  if (join_sorted(got) != join_sorted(wh))
    return "hpi: nodes " + join_sorted(got) + ", want " + join_sorted(wh);
  int dnnl_named = 0;
  for (const std::string& n : got) dnnl_named += n.rfind("dnnl.", 0) == 0;
  if (he.dnnl_nodes() != dnnl_named)
    return "hpi: dnnl_nodes() " + std::to_string(he.dnnl_nodes()) + " but " +
           std::to_string(dnnl_named) + " dnnl.* nodes";
  std::map<std::string, int> execs;
  for (int k = 0; k < 2; ++k) {
    std::vector<NamedTensor> out;
    if (k == 0) {
      DnnlTrace trace;
      trace.start();
      out = he.run(feeds[k], threads[k]);
      execs = trace.stop(&g_impls);
    } else {
      out = he.run(feeds[k], threads[k]);
    }
    if (!hpi_numbers) continue;
    std::string why;
    st.err_hpi = std::max(st.err_hpi, compare(out, want[k], &why));
    if (!why.empty()) return "hpi: " + why;
  }
  // Paths off the fused primitives (recorded at the first run): a split
  // convolution runs its remaining post-ops as extra binary / eltwise
  // primitives, one execution each.
  // A node may run its reference kernel only where oneDNN 2.6 has no usable
  // implementation of the bare op (for a convolution: its reference one, or
  // GEMM for a depthwise convolution with a channel multiplier or dilation,
  // where our direct loop is faster). Never because a fused primitive was
  // refused.
  int split_stages = 0;
  std::vector<std::vector<PathNote>> notes = he.path_notes();
  for (size_t i = 0; i < notes.size(); ++i) {
    const std::string& kernel = he.nodes()[i].def->name;
    for (const PathNote& pn : notes[i]) {
      ++g_paths[kernel][pn.path];
      if (pn.path == "reference") ++g_ref_reasons[kernel + ": " + pn.reason.substr(0, 110)];
      if (pn.path == "split") split_stages += pn.stages;
      if (pn.path != "reference") continue;
      if (kernel == "dnnl.fused_conv2d")
        ++(pn.fused_refused ? g_conv_reference : g_conv_reference_by_design)[pn.impl];
      if (pn.fused_refused)
        return "hpi: " + kernel + " on the reference kernel after a refused fused primitive (" +
               he.nodes()[i].where() + ", oneDNN offered '" + pn.impl + "'): " + pn.reason;
    }
  }
  if (!g_trace_ok) return "";
  // Fast path: primitive executions per kind within [required, required + optional].
  std::map<std::string, std::pair<int, int>> range;
  for (const Want& w : c.want) {
    if (w.prim.empty()) continue;
    auto& rg = range[w.prim];
    if (w.fast == 1) ++rg.first;
    if (w.fast != 0) ++rg.second;
    if (w.fast == -1) ++st.maybe_nodes;
  }
  if (split_stages > 0) {
    // The stages' kinds (binary or eltwise) are pooled with the nodes' own.
    int lo = 0, hi = 0, n = 0;
    for (const char* kind : {"binary", "eltwise"}) {
      if (range.count(kind)) lo += range[kind].first, hi += range[kind].second;
      if (execs.count(kind)) n += execs[kind];
      range.erase(kind);
      execs.erase(kind);
    }
    if (n < lo + split_stages || n > hi + split_stages)
      return "hpi: " + std::to_string(n) + " oneDNN binary/eltwise execution(s), want " +
             std::to_string(lo + split_stages) + ".." + std::to_string(hi + split_stages) +
             " (with " + std::to_string(split_stages) + " split-convolution stage(s))";
    st.maybe_fast += n - lo - split_stages;
  }
  for (const auto& kv : range) {
    int n = execs.count(kv.first) ? execs.at(kv.first) : 0;
    if (n < kv.second.first || n > kv.second.second)
      return "hpi: " + std::to_string(n) + " oneDNN " + kv.first + " execution(s), want " +
             (kv.second.first == kv.second.second
                  ? std::to_string(kv.second.first)
                  : std::to_string(kv.second.first) + ".." + std::to_string(kv.second.second)) +
             " (a node fell back to the reference kernel?)";
    st.maybe_fast += n - kv.second.first;
  }
  for (const auto& kv : execs) {
    if (kv.first == "reorder") continue;
    if (!range.count(kv.first))
      return "hpi: unexpected oneDNN " + kv.first + " execution(s): " + std::to_string(kv.second);
  }
  return "";
}

struct Family {
  const char* name;
  double weight;  // cases per --cases unit
};

const std::vector<Family>& families() {
  static const std::vector<Family> f = {{"conv", 2.0},   {"se", 0.5},        {"pool", 1.0},
                                        {"matmul", 1.5}, {"attention", 0.5}, {"eltwise", 1.0},
                                        {"binary", 1.0}, {"softmax", 0.5},   {"layer_norm", 0.5}};
  return f;
}

int family_cases(const Family& f, int cases) {
  return std::max(1, static_cast<int>(std::lround(f.weight * cases)));
}

double g_seconds = 0;

}  // namespace

void run_family(const char* family, GenFn gen) {
  static const bool trace_ok = [] {
    bool ok = probe_trace();
    if (!ok)
      std::cout << "WARNING: oneDNN writes no verbose log (built without it?): the fast-path "
                   "checks (oneDNN primitive executions) are skipped\n";
    return ok;
  }();
  g_trace_ok = trace_ok;
  const uint64_t seed = seed_or(20240611);
  const int cases = cases_or(150);
  const char* only_env = std::getenv("PIF_DNNL_ONLY");
  const int only = only_env && *only_env ? std::atoi(only_env) : -1;
  const bool include_known = std::getenv("PIF_DNNL_INCLUDE_KNOWN") != nullptr;
  // The case indices: each family's share of --cases, grouped by family in the table's order.
  int first = 0;
  const Family* fam = nullptr;
  for (const Family& f : families()) {
    if (std::string(f.name) == family) {
      fam = &f;
      break;
    }
    first += family_cases(f, cases);
  }
  if (!fam) throw std::runtime_error(std::string("no dnnl family ") + family);
  auto started = std::chrono::steady_clock::now();
  for (int idx = first; idx < first + family_cases(*fam, cases); ++idx) {
    if (only >= 0 && idx != only) continue;
    // Each case has its own generator, so PIF_DNNL_ONLY reproduces it alone.
    Rng r(seed * 1000003ULL + static_cast<uint64_t>(idx) * 7919ULL + 17);
    bool pir = r.b(0.45), dyn = r.b(0.3);
    Case c(pir, dyn);
    c.threads = r.b() ? 1 : 2;
    c.family = family;
    FamilyStats& st = g_stats[family];
    std::string why;
    try {
      gen(c, r);
    } catch (const std::exception& e) {
      why = std::string("generator: ") + e.what();
    }
    std::string label = "#" + std::to_string(idx) + (pir ? " pir" : " legacy") +
                        (dyn ? " dyn-batch" : "") + " t" + std::to_string(c.threads) + " " +
                        c.d.str();
    ++st.cases;
    bool hpi_numbers = c.known_failure.empty() || include_known;
    if (!hpi_numbers) {
      ++st.known;
      if (verbose())
        std::cout << "known " << family << " " << label << ": " << c.known_failure
                  << " (hpi numbers not compared)\n";
    }
    if (verbose()) std::cout << "run  " << family << " " << label << std::endl;
    if (why.empty()) {
      try {
        why = run_case(c, r, st, hpi_numbers);
      } catch (const ModelError& e) {
        why = std::string("exception: ") + e.what() + " [" + e.code() + " " + e.where() + ": " +
              e.detail() + "]";
      } catch (const std::exception& e) {
        why = std::string("exception: ") + e.what();
      }
    }
    if (!why.empty() && !c.known_failure.empty()) why += "\n     known failure: " + c.known_failure;
    if (!why.empty()) {
      ++st.failures;
      fail(std::string(family) + " " + label + "\n     " + why +
           "\n     reproduce: PIF_DNNL_ONLY=" + std::to_string(idx) + " pif_tests --filter dnnl." +
           family + " --seed " + std::to_string(seed) + " --cases " + std::to_string(cases));
    } else if (verbose()) {
      std::cout << "ok   " << family << " " << label << "\n";
    }
  }
  g_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

// Every pass of the high-performance mode is named in all_passes().
PIF_TEST(dnnl, pass_list) {
  for (const PassInfo& p : hpi_passes())
    PIF_CHECK_MSG(std::find(all_passes().begin(), all_passes().end(), p.name) != all_passes().end(),
                  "pass '" << p.name << "' is not in the suite's pass list");
}

// The suite's report (the last dnnl case): what ran where, under which ISA. Checks that no
// convolution ran its reference kernel because a fused primitive was refused (issue 13) and that
// oneDNN ran at the cap ONEDNN_MAX_CPU_ISA asked for. With PIF_TEST_SUMMARY set, writes one line
// for scripts/test-native.sh's ISA matrix to that file.
PIF_TEST(dnnl, isa) {
  std::printf("%-12s %6s %8s %6s %12s %12s %s\n", "family", "cases", "failures", "known",
              "err passes", "err hpi", "either-path nodes on oneDNN");
  for (const auto& kv : g_stats) {
    const FamilyStats& s = kv.second;
    std::printf("%-12s %6d %8d %6d %12.3g %12.3g", kv.first.c_str(), s.cases, s.failures, s.known,
                s.err_passes, s.err_hpi);
    if (s.maybe_nodes) std::printf(" %d/%d", s.maybe_fast, s.maybe_nodes);
    std::printf("\n");
  }
  std::printf("oneDNN executions in the checked hpi runs:\n");
  for (const auto& kv : g_impls) {
    int total = 0;
    std::string list;
    for (const auto& im : kv.second) {
      total += im.second;
      list += (list.empty() ? "" : ", ") + im.first + " " + std::to_string(im.second);
    }
    std::printf("  %-20s %6d (%s)\n", kv.first.c_str(), total, list.c_str());
  }
  // Nodes off their fused primitive, and every convolution on the reference
  // kernel (issue 13: none may be there because a fused primitive was
  // refused; under every ISA cap the count printed here must be 0).
  std::printf("oneDNN nodes off their fused primitive (configurations):\n");
  for (const auto& kv : g_paths) {
    std::string list;
    for (const auto& p : kv.second)
      list += (list.empty() ? "" : ", ") + p.first + " " + std::to_string(p.second);
    std::printf("  %-20s %s\n", kv.first.c_str(), list.c_str());
  }
  std::printf("why nodes ran their reference kernel (configurations):\n");
  for (const auto& kv : g_ref_reasons) std::printf("  %5d  %s\n", kv.second, kv.first.c_str());
  int conv_ref = 0, conv_dw = 0;
  for (const auto& kv : g_conv_reference) conv_ref += kv.second;
  for (const auto& kv : g_conv_reference_by_design) conv_dw += kv.second;
  std::printf("convolutions on the reference kernel because a fused primitive was refused: %d\n",
              conv_ref);
  std::printf(
      "convolutions on the reference kernel because oneDNN has no usable implementation "
      "even without post-ops: %d",
      conv_dw);
  for (const auto& kv : g_conv_reference_by_design)
    std::printf("%s%s %d", &kv == &*g_conv_reference_by_design.begin() ? " (" : ", ",
                kv.first.c_str(), kv.second);
  std::printf("%s\n", conv_dw ? ")" : "");
  const char* isa = isa_name(dnnl::get_effective_cpu_isa());
  std::printf("oneDNN ISA: %s\n", isa);
  PIF_CHECK_MSG(conv_ref == 0, conv_ref << " convolution(s) on the reference kernel after a "
                                           "refused fused primitive");
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (cap && *cap)
    PIF_CHECK_MSG(std::string(isa) == cap, "oneDNN ran at ISA " << isa << ", not the cap " << cap);
  int failed = 0;
  for (const auto& kv : g_stats) failed += kv.second.failures;
  if (const char* path = std::getenv("PIF_TEST_SUMMARY")) {
    const char* label = std::getenv("PIF_TEST_LABEL");
    char line[512];
    std::snprintf(line, sizeof line,
                  "%-36s isa %-17s conv on reference: refused-fused %d, no-oneDNN-impl %d; %.1f s: "
                  "%s\n",
                  label ? label : (cap ? cap : "default"), isa, conv_ref, conv_dw, g_seconds,
                  failed || failures() ? "FAILED" : "all passed");
    std::ofstream(path) << line;
  }
}

}  // namespace pif::test
