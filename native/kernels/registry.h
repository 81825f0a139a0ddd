// The op table: every OpDef of every kernel family. Each family file in
// kernels/ref/ defines one register_* function listed here; adding an op
// means adding its OpDef to a family (or a new family + one line below).
#pragma once

#include <string>
#include <vector>

#include "graph/op_def.h"

namespace pif {

void register_elementwise_ops(std::vector<OpDef>* table);
void register_activation_ops(std::vector<OpDef>* table);
void register_conv_ops(std::vector<OpDef>* table);
void register_pool_ops(std::vector<OpDef>* table);
void register_norm_ops(std::vector<OpDef>* table);
void register_matmul_ops(std::vector<OpDef>* table);
void register_shape_ops(std::vector<OpDef>* table);  // kernels/ref/shape_ops.cc
void register_slice_ops(std::vector<OpDef>* table);  // kernels/ref/slice_ops.cc
void register_fill_ops(std::vector<OpDef>* table);   // kernels/ref/fill_ops.cc
void register_reduce_ops(std::vector<OpDef>* table);
void register_resample_ops(std::vector<OpDef>* table);
void register_fused_ops(std::vector<OpDef>* table);  // kernels/ref/fused.cc

const std::vector<OpDef>& op_table();
// The OpDef handling a Paddle op type (legacy or pd_op.*), or null.
const OpDef* find_op_for_type(const std::string& paddle_type);
// The OpDef with this canonical name (e.g. "conv2d", "pif.fused_conv2d"), or null.
const OpDef* find_op_by_name(const std::string& name);

}  // namespace pif
