// Typed errors (the bottom layer, below graph/): every native error code in
// one place, and ModelError, which every failure to read or run a model ends
// in: a stable `code` for programs to branch on, the file, and the place in it
// (byte offset, record index or op index), so a user can find the damage.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pif {

// Stable error codes (mirrored in lib/errors.ts).
namespace code {
// Loading a model.
constexpr const char* kFormat = "PIF_MODEL_FORMAT";       // malformed bytes / JSON / structure
constexpr const char* kParams = "PIF_MODEL_PARAMS";       // params file disagrees with the program
constexpr const char* kNotFound = "PIF_MODEL_NOT_FOUND";  // a required file or directory is missing
constexpr const char* kLimit = "PIF_MODEL_LIMIT";         // a configured load limit was exceeded
constexpr const char* kIo = "PIF_IO";                     // read/write failure from the OS
constexpr const char* kUnsupported =
    "PIF_MODEL_UNSUPPORTED";  // valid but not supported by this build
// Running a model (runtime/executor).
constexpr const char* kInput = "PIF_INPUT";  // bad run inputs (names, dtypes, dims)
constexpr const char* kRun = "PIF_RUN";      // an op failed while running
constexpr const char* kUnsupportedMode =
    "PIF_UNSUPPORTED";  // option not available on this CPU/mode
// The N-API layer (addon/).
constexpr const char* kInvalidArg = "PIF_INVALID_ARG";  // a bad argument from JavaScript
constexpr const char* kClosed = "PIF_CLOSED";           // the model was closed
constexpr const char* kInternal = "PIF_INTERNAL";       // an unexpected C++ exception
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

}  // namespace pif
