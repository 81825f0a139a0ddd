// A model directory as PaddleX resolves it, loaded into the IR with its
// parameters bound.
#pragma once

#include <string>

#include "common/error.h"
#include "format/limits.h"
#include "graph/ir.h"
#include "graph/loaded_model.h"

namespace pif {

struct LoadOptions {
  LoadLimits limits;
  // When false, a missing params file is not an error (inspect of a
  // graph-only model); parameters stay declared but unloaded.
  bool require_params = true;
};

// Resolves `dir` (or a program file path): inference.json preferred over
// inference.pdmodel; then model.pdmodel, __model__. Params: <stem>.pdiparams,
// __params__, params, else one file per variable next to __model__.
LoadedModel load_model(const std::string& path, const LoadOptions& opts);

// Reads a whole file with a size limit; throws ModelError.
std::string read_file_limited(const std::string& path, uint64_t max_bytes);

struct SavedFiles {
  std::string program_file;
  std::string params_file;  // combined file, the directory (Separate), or ""
};

// Writes `dir` (created if needed): a legacy program as inference.pdmodel
// (Combined) or __model__ + one file per parameter (Separate), a PIR program
// as inference.json + inference.pdiparams. Each file is written to a
// temporary name, fsynced and renamed into place. A model loaded without
// its parameters (graph only) is saved as its program alone.
SavedFiles save_model(const LoadedModel& m, const std::string& dir, ParamsLayout layout);

// Writes `data` to `path` atomically (temp file + fsync + rename).
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace pif
