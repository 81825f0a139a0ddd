// Seeded random weights for a model loaded without its parameters (the
// graph-only fixtures, `--random-weights`): lets every real graph run and be
// cross-checked even when its weights are not available.
#pragma once

#include <cstdint>

#include "graph/ir.h"

namespace pif {

// Binds every unloaded parameter of `p` to seeded pseudo-random data of its
// declared dtype/dims: fan-in-scaled uniform values for weights, positive
// values for batch-norm variances, values near 1 for norm scales; integer
// params get small integers, other dtypes zeros. std::mt19937_64 is fully
// specified by the standard, so a seed gives the same bytes everywhere.
// Returns the number of parameters bound. Throws ModelError
// (PIF_MODEL_PARAMS) when a declared shape is not fully known.
size_t bind_random_params(Program* p, uint64_t seed);

}  // namespace pif
