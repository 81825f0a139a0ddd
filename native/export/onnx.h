// ONNX export: converts a lowered program (a Program and its Nodes, as the
// Executor lowers them) to an ONNX ModelProto that onnxruntime and other runtimes can run, written
// with our own protobuf writer (format/wire.h).
//
// - Default opset 17 (LayerNormalization); 16 and lower fall back to a
//   decomposed layer_norm; GridSample needs 16; 13 is the minimum.
// - Graph inputs/outputs keep the Paddle names and declared dims (-1 becomes
//   a symbolic dim: "N" for dim 0, "<input>_d<k>" otherwise).
// - Parameters and folded constants that a computing op reads become
//   initializers (raw_data, little-endian), under their Paddle names.
// - Every Paddle op is translated to mirror the reference kernel in
//   kernels/ref/ (attribute parsing, defaults, legacy axis broadcasting, 0-D
//   vs [1] results). An op that has no exact ONNX form in the given context
//   (adaptive pooling with uneven bins, a transposed conv whose SAME padding
//   depends on dynamic dims, ...) throws ModelError(PIF_MODEL_UNSUPPORTED)
//   naming the op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/op_def.h"

namespace pif {

class Executor;

struct OnnxOptions {
  int64_t opset = 17;  // 13..17 (GridSample needs 16)
  std::string producer_name = "paddle-image-feature";
  std::string producer_version;
  std::string graph_name = "paddle_graph";
};

// Serialized ONNX ModelProto bytes. Throws ModelError: PIF_MODEL_UNSUPPORTED
// for ops (or op configurations) without an ONNX translation, with the op
// location; PIF_MODEL_FORMAT for graphs the exporter cannot follow.
// The exporter reads the IR only: `nodes` are block 0 of `program` lowered
// and prepared (Executor::nodes() without hpi or passes).
std::string export_onnx(const Program& program, const std::vector<Node>& nodes,
                        const OnnxOptions& opts = OnnxOptions());
// The same for an Executor's program and nodes (export/onnx_executor.cc).
std::string export_onnx(const Executor& ex, const OnnxOptions& opts = OnnxOptions());

}  // namespace pif
