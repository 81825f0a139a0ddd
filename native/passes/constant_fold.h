// Constant folding done at load time so that PIR's mutable attributes (and
// legacy fill_constant outputs) become known constants: `pd_op.full`,
// `pd_op.full_int_array`, `builtin.combine`, legacy `fill_constant`, and
// shape chains (shape/shape64 -> slice -> stack/concat) whose inputs have
// fully static dims. Ops are kept (the census and writers still see them);
// only Value::constant / Value::elements are filled.
#pragma once

#include "graph/ir.h"

namespace pif {

// Returns the number of values folded: constants plus combine tuples
// (Value::elements).
size_t fold_constants(Program* p);

}  // namespace pif
