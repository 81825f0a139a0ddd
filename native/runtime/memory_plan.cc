#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <string>

#include "runtime/lower.h"

namespace pif {

BufferPool::~BufferPool() {
  for (auto& kv : free_) std::free(kv.second);
}

std::shared_ptr<void> BufferPool::get(uint64_t n) {
  uint64_t size = (std::max<uint64_t>(n, 1) + 63) & ~uint64_t(63);
  void* p = nullptr;
  auto it = free_.lower_bound(size);
  // Reuse a block unless it is much larger than needed (keeps big blocks
  // for big tensors).
  if (it != free_.end() && it->first <= size * 2) {
    size = it->first;
    p = it->second;
    free_.erase(it);
  } else {
    p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
  }
  return std::shared_ptr<void>(p, [this, size](void* q) { free_.emplace(size, q); });
}

namespace {

std::vector<RTensor> static_values_of(const Program& p) {
  std::vector<RTensor> out(p.values.size());
  for (size_t v = 0; v < p.values.size(); ++v) {
    const Value& val = p.values[v];
    const Tensor* t = nullptr;
    if (val.constant)
      t = val.constant.get();
    else if (val.param_index >= 0)
      t = &p.params[val.param_index].tensor;
    if (!t) continue;
    RTensor& r = out[v];
    r.dtype = t->dtype;
    r.dims = t->dims;
    r.nbytes = t->nbytes;
    r.owner = std::shared_ptr<void>(t->storage, t->storage ? t->storage->data() : nullptr);
    r.data = const_cast<uint8_t*>(t->data());
    if (!r.data) {
      // Zero-size tensors still need a non-null address for kernels.
      static uint64_t empty[8];
      r.data = empty;
    }
  }
  return out;
}

// Per value, the index of the last node reading it (-1: none); checks that
// every input and graph output is produced first.
std::vector<int64_t> last_uses(const LoadedModel& m, const std::vector<Node>& nodes,
                               const std::vector<RTensor>& static_values) {
  const Program& p = m.program;
  std::vector<bool> available(p.values.size(), false);
  for (size_t v = 0; v < p.values.size(); ++v) available[v] = static_values[v].data != nullptr;
  for (const IoBinding& io : p.inputs) available[io.value] = true;
  std::vector<int64_t> last_use(p.values.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k) {
    const Node& n = nodes[k];
    for (const auto& g : n.inputs) {
      for (ValueId v : g) {
        if (!available[v]) {
          throw model_error(m, code::kFormat, n.where(),
                            "input value " +
                                (p.values[v].name.empty() ? "%" + std::to_string(p.values[v].pir_id)
                                                          : "'" + p.values[v].name + "'") +
                                " is not produced by any earlier op");
        }
        last_use[v] = static_cast<int64_t>(k);
      }
    }
    for (const auto& g : n.outputs)
      for (ValueId v : g) available[v] = true;
  }
  for (const IoBinding& io : p.outputs) {
    if (!available[io.value]) {
      throw model_error(m, code::kFormat, "output '" + io.name + "'",
                        "graph output is not produced by any op");
    }
  }
  return last_use;
}

}  // namespace

MemoryPlan plan_memory(const LoadedModel& model, const std::vector<Node>& nodes) {
  const Program& p = model.program;
  MemoryPlan plan;
  plan.static_values = static_values_of(p);
  plan.is_graph_output.assign(p.values.size(), false);
  for (const IoBinding& io : p.outputs) plan.is_graph_output[io.value] = true;
  std::vector<int64_t> last_use = last_uses(model, nodes, plan.static_values);
  // Outputs nobody reads go right after their node; the rest after their last reader.
  plan.release_after.assign(nodes.size(), {});
  for (size_t k = 0; k < nodes.size(); ++k) {
    for (const auto& g : nodes[k].outputs) {
      for (ValueId v : g) {
        if (last_use[v] < 0 && !plan.is_graph_output[v]) plan.release_after[k].push_back(v);
      }
    }
  }
  for (size_t v = 0; v < p.values.size(); ++v) {
    if (last_use[v] >= 0 && !plan.is_graph_output[v] && !plan.static_values[v].data)
      plan.release_after[static_cast<size_t>(last_use[v])].push_back(static_cast<ValueId>(v));
  }
  return plan;
}

}  // namespace pif
