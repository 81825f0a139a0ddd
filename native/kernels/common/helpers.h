// Kernel helpers shared by both backends (kernels/ref and kernels/dnnl):
// input access, integer tensors, convolution geometry and IR tensor views.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/ir.h"
#include "graph/op_def.h"
#include "graph/op_states.h"

namespace pif {

// Requires input `slot` to be present, returning it.
const RTensor& need_input(const RunCtx& c, size_t slot, const char* name);

// Reads an integer tensor (int32/int64) as int64 values.
std::vector<int64_t> read_ints(const RTensor& t);

// Effective conv padding [top, bottom, left, right] and dilations for input
// H x W and kernel KH x KW (SAME / VALID resolved as Paddle does).
void conv_resolved_padding(const ConvState& s, int64_t H, int64_t W, int64_t KH, int64_t KW,
                           int64_t pads[4], int64_t* dh, int64_t* dw);

// An RTensor view of an IR tensor (shares its storage).
RTensor rtensor_of(const Tensor& t);

}  // namespace pif
