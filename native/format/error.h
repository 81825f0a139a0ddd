// Typed load errors. Every failure to read a model ends here: a stable `code`
// for programs to branch on, the file, and the place in it (byte offset,
// record index or op index), so a user can find the damage.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pif {

// Stable error codes (mirrored in lib/errors.ts).
namespace code {
constexpr const char* kFormat = "PIF_MODEL_FORMAT";       // malformed bytes / JSON / structure
constexpr const char* kParams = "PIF_MODEL_PARAMS";       // params file disagrees with the program
constexpr const char* kNotFound = "PIF_MODEL_NOT_FOUND";  // a required file or directory is missing
constexpr const char* kLimit = "PIF_MODEL_LIMIT";         // a configured load limit was exceeded
constexpr const char* kIo = "PIF_IO";                     // read/write failure from the OS
constexpr const char* kUnsupported =
    "PIF_MODEL_UNSUPPORTED";  // valid but not supported by this build
}  // namespace code

class ModelError : public std::runtime_error {
 public:
  // `where` is a free-form locator such as "record 12 (conv2d_3.w_0)" or
  // "op 57 (pd_op.conv2d)"; `offset` is a byte offset or -1.
  ModelError(std::string code, std::string file, int64_t offset, std::string where,
             std::string detail);

  const std::string& code() const { return code_; }
  const std::string& file() const { return file_; }
  int64_t offset() const { return offset_; }
  const std::string& where() const { return where_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string code_, file_, where_, detail_;
  int64_t offset_;
};

// Load-time limits. Defaults allow every real model (CLIP ViT-L is ~1.2 GB of
// fp32 weights) while refusing absurd sizes from corrupt files before any
// allocation is made.
struct LoadLimits {
  uint64_t max_file_bytes = 8ull << 30;          // any single input file
  uint64_t max_tensor_bytes = 4ull << 30;        // one tensor record
  uint64_t max_total_param_bytes = 16ull << 30;  // all parameters together
  uint32_t max_rank = 16;                        // dims per tensor
  uint32_t max_ops = 1u << 20;                   // ops over all blocks
  uint32_t max_values = 1u << 22;                // variables / PIR values
  uint32_t max_blocks = 1u << 16;
  uint32_t max_depth = 128;  // JSON / protobuf nesting
};

}  // namespace pif
