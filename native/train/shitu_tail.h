// Where the head tier cuts a PP-ShiTuV2_rec program (../shared/spec/architectures.md §1.2 rows
// 15-19): the global average pool's output (the cached "pooled features"), and the tail after it,
// last_conv (1x1, in -> dim) + bias add -> dropout -> flatten(s) -> batch_norm -> (scale/assign)
// -> the graph output, with the parameters the head tier trains and writes back. Found on the
// executor's lowered nodes (legacy and PIR exports alike), in normal mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/executor.h"

namespace pif {
namespace train {

struct ShituTail {
  ValueId pooled = kNoValue;  // [N, in, 1, 1]
  int64_t in = 0, dim = 0;
  // Indexes into Program::params.
  int32_t conv_weight = -1, conv_bias = -1;
  int32_t bn_scale = -1, bn_bias = -1, bn_mean = -1, bn_var = -1;
  double dropout_scale = 1.0;  // the dropout's inference multiplier, 1 - p (1 without one)
  double bn_epsilon = 1e-5;
  // The CLIP models' tail: the mean of the projected tokens ([N, in], "pooled") -> the FC
  // neck (matmul with a [in, dim] weight, conv_weight, + bias) -> the output; no BNNeck (the
  // bn_* indexes are -1) and no dropout.
  bool clip = false;
};

// One re-parameterised block of PP-ShiTuV2_rec's stages 3-4 without SE, as exported
// (architectures.md §1.2 rows 13-14): a k x k depthwise conv + bias add -> ReLU -> 1x1 conv ->
// batch_norm -> ReLU, then `+ input` when it has a shortcut. Its parameters are indexes into
// Program::params.
struct RepBlock {
  ValueId input = kNoValue, output = kNoValue;
  int64_t cin = 0, cout = 0, k = 0, stride = 1, pad = 0;
  bool residual = false;
  int32_t dw_weight = -1, dw_bias = -1, pw_weight = -1;
  int32_t bn_scale = -1, bn_bias = -1, bn_mean = -1, bn_var = -1;
  double bn_epsilon = 1e-5;
};

// The tail of the program `ex` runs (built in normal mode): PP-ShiTuV2_rec's, or the CLIP
// models' when the output comes from a bias add after a matmul. Throws ModelError
// PIF_MODEL_UNSUPPORTED naming the op where the program leaves the expected shape.
ShituTail find_shitu_tail(const Executor& ex, const std::string& model_dir);

// The `count` blocks before a PP-ShiTuV2_rec tail's global pool, first to last (stage 4 is the
// last 2): each block's input is the one before's output. Throws ModelError
// PIF_MODEL_UNSUPPORTED naming the op where the program leaves that shape (a CLIP tail has none).
std::vector<RepBlock> find_stage_blocks(const Executor& ex, const ShituTail& t,
                                        const std::string& model_dir, int count);

}  // namespace train
}  // namespace pif
