// Memory planning (runtime layer): which tensors are static (parameters and
// folded constants, shared read-only by every run), after which node each
// activation is last read and can return to its run's pool, and the pool
// itself (size-keyed best-fit reuse of freed activation buffers).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "graph/loaded_model.h"
#include "graph/op_def.h"

namespace pif {

// Best-fit reuse of freed activation buffers within one run context. Not
// thread-safe by design: one pool serves one run at a time.
class BufferPool {
 public:
  ~BufferPool();
  // A 64-byte aligned buffer of at least n bytes; it returns to the pool when
  // the last shared_ptr to it goes.
  std::shared_ptr<void> get(uint64_t n);

 private:
  std::multimap<uint64_t, void*> free_;
};

struct MemoryPlan {
  std::vector<RTensor> static_values;               // per value: params and folded constants
  std::vector<std::vector<ValueId>> release_after;  // per node: values last read (or unread) there
  std::vector<bool> is_graph_output;                // per value
};

// Plans the nodes' memory. Throws ModelError (PIF_MODEL_FORMAT) when a node
// reads a value no earlier node produces or a graph output is never produced.
MemoryPlan plan_memory(const LoadedModel& model, const std::vector<Node>& nodes);

}  // namespace pif
