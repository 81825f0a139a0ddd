// export_onnx: converts a Paddle inference model directory to ONNX.
//
//   export_onnx MODEL_DIR OUT.onnx [--random-weights SEED] [--opset N]
//
// --random-weights binds every parameter the model directory does not
// provide to seeded pseudo-random values (graph-only fixtures); the same
// seed gives the same weights as `run_model --random-weights SEED`.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "builder/random_weights.h"
#include "export/onnx.h"
#include "format/model_dir.h"
#include "passes/constant_fold.h"
#include "runtime/executor.h"
#include "tools/tool_main.h"

using namespace pif;

int main(int argc, char** argv) {
  std::string dir, out;
  bool random = false;
  uint64_t seed = 0;
  OnnxOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--random-weights" && i + 1 < argc) {
      random = true;
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--opset" && i + 1 < argc) {
      opts.opset = std::strtoll(argv[++i], nullptr, 10);
    } else if (dir.empty()) {
      dir = a;
    } else if (out.empty()) {
      out = a;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty() || out.empty()) {
    std::cerr << "usage: export_onnx MODEL_DIR OUT.onnx [--random-weights SEED] [--opset N]\n";
    return 2;
  }
  return run_tool([&] {
    LoadOptions lo;
    lo.require_params = !random;
    auto m = std::make_shared<LoadedModel>(load_model(dir, lo));
    size_t bound = random ? bind_random_params(&m->program, seed) : 0;
    fold_constants(&m->program);
    Executor ex(m);
    std::string bytes = export_onnx(ex, opts);
    write_file_atomic(out, bytes);
    std::cout << "wrote " << out << " (" << bytes.size() << " bytes, " << ex.nodes().size()
              << " ops";
    if (random) std::cout << ", " << bound << " random parameters";
    std::cout << ")\n";
    return 0;
  });
}
