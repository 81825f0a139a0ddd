// build_model: writes a test model of one of the three PaddleX image-feature
// targets with seeded random weights, then re-reads it to verify.
//
//   build_model NAME --out DIR [--format pir|legacy] [--seed N] [--gelu quick|exact]
//
// NAME: PP-ShiTuV2_rec | PP-ShiTuV2_rec_CLIP_vit_base | PP-ShiTuV2_rec_CLIP_vit_large.
// Writes DIR/inference.json (pir, default) or DIR/inference.pdmodel (legacy),
// DIR/inference.pdiparams and DIR/inference.yml, prints a summary (op count
// and census, parameter count, values, bytes), reloads DIR with load_model
// and requires dump_program of the reloaded program (parameter digests
// included) to equal the built one. --gelu selects the CLIP MLP activation
// (default exact = nn.GELU, as PaddleClas since 2024-05; quick = QuickGELU).
// Exit status 0 on success.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "builder/model_builder.h"
#include "common/error.h"
#include "format/model_dir.h"
#include "graph/ir.h"

using namespace pif;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: build_model NAME --out DIR [--format pir|legacy] [--seed N] "
               "[--gelu quick|exact]\n  NAME:");
  for (const auto& n : buildable_model_names()) std::fprintf(stderr, " %s", n.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, out;
  ProgramFormat format = ProgramFormat::Pir;
  uint64_t seed = 0;
  BuildOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "build_model: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--out") {
      out = next();
    } else if (a == "--format") {
      std::string f = next();
      if (f == "pir")
        format = ProgramFormat::Pir;
      else if (f == "legacy")
        format = ProgramFormat::Legacy;
      else
        return usage();
    } else if (a == "--seed") {
      std::string s = next();
      char* end = nullptr;
      seed = std::strtoull(s.c_str(), &end, 0);
      if (s.empty() || *end) return usage();
    } else if (a == "--gelu") {
      std::string g = next();
      if (g == "quick")
        opts.clip_activation = ClipActivation::QuickGelu;
      else if (g == "exact")
        opts.clip_activation = ClipActivation::Gelu;
      else
        return usage();
    } else if (a == "-h" || a == "--help") {
      return usage();
    } else if (name.empty() && a.rfind("--", 0) != 0) {
      name = a;
    } else {
      return usage();
    }
  }
  if (name.empty() || out.empty()) return usage();

  try {
    BuiltModel bm = build_model(name, format, seed, opts);
    const Program& p = bm.model.program;

    std::map<std::string, int> census;
    for (const Block& b : p.blocks)
      for (const Op& op : b.ops) census[op.type]++;
    uint64_t values = 0, bytes = 0, bn_values = 0;
    for (const Parameter& prm : p.params) {
      values += static_cast<uint64_t>(prm.tensor.numel());
      bytes += prm.tensor.nbytes;
      if (prm.name.rfind("batch_norm", 0) == 0)
        bn_values += static_cast<uint64_t>(prm.tensor.numel());
    }

    SavedFiles files = save_model(bm.model, out, ParamsLayout::Combined);
    write_file_atomic(out + "/inference.yml", bm.inference_yml);

    std::printf("model   %s (%s, seed %llu)\n", name.c_str(),
                format == ProgramFormat::Pir ? "pir" : "legacy",
                static_cast<unsigned long long>(seed));
    std::printf("files   %s, %s, %s/inference.yml\n", files.program_file.c_str(),
                files.params_file.c_str(), out.c_str());
    std::printf("ops     %zu\n", p.op_count());
    for (const auto& kv : census) std::printf("  %-28s %d\n", kv.first.c_str(), kv.second);
    std::printf("params  %zu tensors, %llu values (%llu batch-norm, %llu other), %llu bytes\n",
                p.params.size(), static_cast<unsigned long long>(values),
                static_cast<unsigned long long>(bn_values),
                static_cast<unsigned long long>(values - bn_values),
                static_cast<unsigned long long>(bytes));
    for (const auto* list : {&p.inputs, &p.outputs})
      for (const IoBinding& io : *list) {
        std::printf("%-7s %s [", list == &p.inputs ? "input" : "output", io.name.c_str());
        const auto& d = p.values[io.value].type.dims;
        for (size_t k = 0; k < d.size(); ++k)
          std::printf("%s%lld", k ? "," : "", static_cast<long long>(d[k]));
        std::printf("]\n");
      }

    LoadOptions lo;
    LoadedModel back = load_model(out, lo);
    const std::string a = dump_program(p), b = dump_program(back.program);
    if (a != b) {
      size_t k = 0;
      while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
      size_t line = a.rfind('\n', k);
      line = line == std::string::npos ? 0 : line + 1;
      std::fprintf(
          stderr,
          "verify: FAILED: reloaded program differs at byte %zu\n  built:  %s\n  reread: %s\n", k,
          a.substr(line, 300).c_str(), b.substr(line, 300).c_str());
      return 1;
    }
    std::printf("verify  reloaded %s: program and parameter digests identical\n",
                back.program_file.c_str());
    return 0;
  } catch (const ModelError& e) {
    std::fprintf(stderr, "build_model: %s: %s%s%s\n", e.code().c_str(), e.where().c_str(),
                 e.where().empty() ? "" : ": ", e.detail().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "build_model: %s\n", e.what());
    return 1;
  }
}
