// Paddle 3.x PIR program: `inference.json` (serialization versions 1-4 and
// the pre-release spelling with "#" value ids and uncompressed op names).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "format/limits.h"
#include "graph/ir.h"

namespace pif {

// Parses a PIR JSON program. Fills values (one per PIR value id), the single
// top block's ops (type names expanded to `pd_op.*` / `builtin.*`), inputs
// (pd_op.data by name, in op order), outputs (pd_op.fetch by col) and declares
// params (builtin.parameter ops sorted by parameter_name, persistable ones).
// Throws ModelError (PIF_MODEL_FORMAT / PIF_MODEL_LIMIT) naming the op index.
Program parse_pir_json(const uint8_t* data, size_t size, const std::string& file,
                       const LoadLimits& limits);

// Serialises a PIR program (format == Pir) as version-1 compressed JSON (one
// line, keys sorted as Paddle writes them).
std::string write_pir_json(const Program& p);

}  // namespace pif
