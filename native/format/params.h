// Parameter files: the save_combine record format (`*.pdiparams`,
// `__params__`, `params`) and the one-file-per-variable layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/error.h"
#include "graph/ir.h"

namespace pif {

// One tensor record as read from a buffer.
struct TensorRecord {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::vector<std::vector<uint64_t>> lod;
  uint64_t data_offset = 0;  // of the raw data within the buffer
  uint64_t nbytes = 0;
};

// Reads one record starting at *pos; advances *pos past it. `where` names the
// record in errors ("record 3 (conv2d_0.w_0)").
TensorRecord read_tensor_record(const uint8_t* data, size_t size, size_t* pos,
                                const std::string& file, const std::string& where,
                                const LoadLimits& limits);

// Appends one record (header + data) to `out`.
void append_tensor_record(const Tensor& t, std::string* out);

// Binds a combined params buffer to p.params in order: checks dtype/dims of
// every record against the program, copies data into one shared arena, and
// requires that the buffer is consumed exactly.
void bind_combined_params(Program* p, const uint8_t* data, size_t size, const std::string& file,
                          const LoadLimits& limits);

// Plans one shared, 64-byte-aligned arena for all declared parameters and
// returns it (zeroed) with each parameter's offset. Refuses sizes over the
// limits before allocating.
std::shared_ptr<std::vector<uint8_t>> plan_param_arena(Program* p, const std::string& file,
                                                       const LoadLimits& limits,
                                                       std::vector<uint64_t>* offsets);

// Binds parameter `index` from a separate-file buffer holding exactly one
// record, copying its data into `arena` at `arena_offset`.
void bind_separate_param(Program* p, size_t index, const uint8_t* data, size_t size,
                         const std::string& file, const LoadLimits& limits,
                         std::shared_ptr<std::vector<uint8_t>> arena, uint64_t arena_offset);

// Serialises all params (which must be loaded) in order as a combined file.
std::string write_combined_params(const Program& p);

}  // namespace pif
