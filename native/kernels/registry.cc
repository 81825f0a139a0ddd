#include "kernels/registry.h"

#include "kernels/common/helpers.h"

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
  static const auto by_type = name_index(
      op_table(), [](const OpDef& d) -> const std::vector<std::string>& { return d.types; });
  return by_type.find(paddle_type);
}

const OpDef* find_op_by_name(const std::string& name) {
  static const auto by_name =
      name_index(op_table(), [](const OpDef& d) { return std::vector<std::string>{d.name}; });
  return by_name.find(name);
}

}  // namespace pif
