// Legacy Paddle program: serialized `paddle.framework.proto.ProgramDesc`
// (`inference.pdmodel`, `model.pdmodel`, `__model__`). Hand-written proto2
// wire reader/writer; every block is parsed and sub-blocks are kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "format/limits.h"
#include "graph/ir.h"

namespace pif {

// Parses a ProgramDesc. `file` is only used in error messages. Fills
// values/blocks/ops, inputs (feed ops by col), outputs (fetch ops by col) and
// declares params (persistable block-0 vars minus FEED_MINIBATCH/FETCH_LIST/
// RAW, sorted by name) without loading their data.
// Throws ModelError (PIF_MODEL_FORMAT / PIF_MODEL_LIMIT).
Program parse_program_desc(const uint8_t* data, size_t size, const std::string& file,
                           const LoadLimits& limits);

// Serialises a legacy program (format == Legacy) back to ProgramDesc bytes.
std::string write_program_desc(const Program& p);

}  // namespace pif
