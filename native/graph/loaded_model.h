// A program as loaded from a model directory (format/model_dir.h fills it):
// the IR plus the files it came from, which error messages name. It lives in
// the graph layer so that the executor (runtime/) takes a loaded program
// without depending on the readers.
#pragma once

#include <cstdint>
#include <string>

#include "graph/ir.h"

namespace pif {

enum class ParamsLayout : uint8_t { None, Combined, Separate };

struct LoadedModel {
  std::string dir;
  std::string program_file;  // absolute/relative path as resolved
  std::string params_file;   // combined file, or the directory for Separate
  ParamsLayout params_layout = ParamsLayout::None;
  Program program;
};

}  // namespace pif
