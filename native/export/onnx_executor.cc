// export_onnx over an Executor: the one place where export/ meets runtime/;
// the exporter itself (onnx.cc) reads the IR only.
#include "export/onnx.h"
#include "runtime/executor.h"

namespace pif {

std::string export_onnx(const Executor& ex, const OnnxOptions& opts) {
  return export_onnx(ex.program(), ex.nodes(), opts);
}

}  // namespace pif
