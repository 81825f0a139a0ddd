#include "common/error.h"

#include <utility>

namespace pif {

namespace {
std::string compose(const std::string& file, int64_t offset, const std::string& where,
                    const std::string& detail) {
  std::string m = file.empty() ? std::string("<memory>") : file;
  if (offset >= 0) m += ": byte " + std::to_string(offset);
  if (!where.empty()) m += ": " + where;
  m += ": " + detail;
  return m;
}
}  // namespace

ModelError::ModelError(std::string code, std::string file, int64_t offset, std::string where,
                       std::string detail)
    : std::runtime_error(compose(file, offset, where, detail)),
      code_(std::move(code)),
      file_(std::move(file)),
      where_(std::move(where)),
      detail_(std::move(detail)),
      offset_(offset) {}

}  // namespace pif
