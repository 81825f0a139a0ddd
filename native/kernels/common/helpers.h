// Kernel helpers shared by both backends (kernels/ref and kernels/dnnl):
// input access, integer tensors, convolution geometry and IR tensor views.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph/ir.h"
#include "graph/op_def.h"
#include "graph/op_states.h"

namespace pif {

// Requires input `slot` to be present, returning it.
const RTensor& need_input(const RunCtx& c, size_t slot, const char* name);

// Reads an integer tensor (int32/int64) as int64 values.
std::vector<int64_t> read_ints(const RTensor& t);

// Effective conv padding [top, bottom, left, right] and dilations for input
// H x W and kernel KH x KW (SAME / VALID resolved as Paddle does).
void conv_resolved_padding(const ConvState& s, int64_t H, int64_t W, int64_t KH, int64_t KW,
                           int64_t pads[4], int64_t* dh, int64_t* dw);

// An RTensor view of an IR tensor (shares its storage).
RTensor rtensor_of(const Tensor& t);

// Name lookup over a registration table (the op table, the oneDNN bindings):
// every name `names_of(entry)` lists maps to its entry; the first entry
// registering a name keeps it.
template <typename T, typename NamesFn>
class NameIndex {
 public:
  NameIndex(const std::vector<T>& table, NamesFn names_of) {
    for (const T& e : table)
      for (const std::string& n : names_of(e)) by_name_.emplace(n, &e);
  }
  const T* find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

 private:
  std::unordered_map<std::string, const T*> by_name_;
};

template <typename T, typename NamesFn>
NameIndex<T, NamesFn> name_index(const std::vector<T>& table, NamesFn names_of) {
  return NameIndex<T, NamesFn>(table, names_of);
}

}  // namespace pif
