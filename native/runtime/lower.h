// Lowering (runtime layer): block 0 of a loaded program to Nodes, each bound
// to the OpDef the kernel registry (kernels/registry.h) has for its Paddle op
// type, with legacy slot names / PIR operand positions mapped to the OpDef's
// canonical slots and the attributes parsed (OpDef::prepare). It lives here,
// not in graph/ or passes/, because it needs the op table of kernels/, which
// sits above those layers.
#pragma once

#include <string>
#include <vector>

#include "graph/loaded_model.h"
#include "graph/op_def.h"

namespace pif {

// A ModelError located in the model's program file.
ModelError model_error(const LoadedModel& m, const std::string& code, const std::string& where,
                       const std::string& msg);

// The nodes of block 0 in program order. Ops that do not compute (graph I/O,
// parameters, PIR tuple plumbing) and ops whose outputs were all folded to
// constants get no node. Throws ModelError: PIF_MODEL_UNSUPPORTED listing
// every unsupported op type of every block with its count, or the code of the
// OpError a prepare() threw, located at its op.
std::vector<Node> lower_program(const LoadedModel& model);

}  // namespace pif
