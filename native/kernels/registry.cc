#include "kernels/registry.h"

#include <unordered_map>

namespace pif {

const std::vector<OpDef>& op_table() {
  static const std::vector<OpDef> table = [] {
    std::vector<OpDef> t;
    register_elementwise_ops(&t);
    register_activation_ops(&t);
    register_conv_ops(&t);
    register_pool_ops(&t);
    register_norm_ops(&t);
    register_matmul_ops(&t);
    register_shape_ops(&t);
    register_slice_ops(&t);
    register_fill_ops(&t);
    register_reduce_ops(&t);
    register_resample_ops(&t);
    register_fused_ops(&t);
    return t;
  }();
  return table;
}

const OpDef* find_op_for_type(const std::string& paddle_type) {
  static const std::unordered_map<std::string, const OpDef*> by_type = [] {
    std::unordered_map<std::string, const OpDef*> m;
    for (const OpDef& d : op_table())
      for (const std::string& t : d.types) m.emplace(t, &d);
    return m;
  }();
  auto it = by_type.find(paddle_type);
  return it == by_type.end() ? nullptr : it->second;
}

const OpDef* find_op_by_name(const std::string& name) {
  static const std::unordered_map<std::string, const OpDef*> by_name = [] {
    std::unordered_map<std::string, const OpDef*> m;
    for (const OpDef& d : op_table()) m.emplace(d.name, &d);
    return m;
  }();
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : it->second;
}

}  // namespace pif
