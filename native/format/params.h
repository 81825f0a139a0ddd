// Parameter files: the save_combine record format (`*.pdiparams`,
// `__params__`, `params`) and the one-file-per-variable layout.
#pragma once

#include <functional>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "format/limits.h"
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

// read_tensor_record on a window of a larger file: data[0] is at file offset
// `base`, the file has `total_size` bytes; the record's data may lie beyond
// the window (rec.data_offset stays window-relative). Error offsets are file
// offsets.
TensorRecord read_tensor_header(const uint8_t* data, size_t size, uint64_t base,
                                uint64_t total_size, size_t* pos, const std::string& file,
                                const std::string& where, const LoadLimits& limits);

// Appends one record (header + data) to `out`.
void append_tensor_record(const Tensor& t, std::string* out);

// Binds a combined params buffer to p.params in order: checks dtype/dims of
// every record against the program, copies data into one shared arena, and
// requires that the buffer is consumed exactly.
void bind_combined_params(Program* p, const uint8_t* data, size_t size, const std::string& file,
                          const LoadLimits& limits);

// Reads exactly n bytes at offset into dst, or throws ModelError (PIF_IO).
using ReadAt = std::function<void(uint64_t offset, uint8_t* dst, uint64_t n)>;

// bind_combined_params reading a file of `size` bytes through `read_at`:
// record headers through a small window, tensor data straight into the
// arena, so loading never holds the file and the arena at once (peak memory
// = the parameters once).
void bind_combined_params_stream(Program* p, uint64_t size, const ReadAt& read_at,
                                 const std::string& file, const LoadLimits& limits);

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
