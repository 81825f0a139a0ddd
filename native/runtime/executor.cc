#include "runtime/executor.h"

#include <omp.h>

#include <chrono>
#include <cstdio>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "kernels/dnnl/common.h"
#include "kernels/registry.h"
#include "passes/fuse.h"

namespace pif {

// ---------------------------------------------------------------------------
// Buffer pool: best-fit reuse of freed activation buffers within one run
// context. Not thread-safe by design: one pool serves one run at a time.

class BufferPool {
 public:
  ~BufferPool() {
    for (auto& kv : free_) std::free(kv.second);
  }
  std::shared_ptr<void> get(uint64_t n) {
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

 private:
  std::multimap<uint64_t, void*> free_;
};

namespace {

// Ops that do not compute at run time: graph I/O markers, parameters, and
// tuple plumbing resolved during lowering.
const std::unordered_set<std::string>& passive_ops() {
  static const std::unordered_set<std::string> s = {"feed",
                                                    "fetch",
                                                    "pd_op.data",
                                                    "pd_op.fetch",
                                                    "builtin.parameter",
                                                    "builtin.combine",
                                                    "builtin.split",
                                                    "builtin.slice"};
  return s;
}

ModelError wrap(const LoadedModel& m, const std::string& code, const std::string& where,
                const std::string& msg) {
  return ModelError(code, m.program_file, -1, where, msg);
}

}  // namespace

std::vector<std::vector<PathNote>> Executor::path_notes() const {
  std::vector<std::vector<PathNote>> out(nodes_.size());
  for (size_t i = 0; i < path_logs_.size() && i < out.size(); ++i)
    if (path_logs_[i]) out[i] = path_logs_[i]->notes();
  return out;
}

Executor::Executor(std::shared_ptr<const LoadedModel> model, const ExecutorOptions& options)
    : model_(std::move(model)) {
  if (options.bf16 && !options.hpi)
    throw wrap(*model_, code::kUnsupportedMode, "",
               "precision bf16 needs the high-performance mode");
  if (options.bf16 && !dnnl_backend::cpu_has_bf16()) {
    throw wrap(*model_, code::kUnsupportedMode, "",
               "precision bf16 needs a CPU with AVX512-BF16 or AMX (this CPU has neither); use "
               "precision fp32");
  }
  const Program& p = model_->program;
  if (p.blocks.empty()) throw wrap(*model_, code::kFormat, "", "program has no blocks");
  for (const Parameter& prm : p.params) {
    if (!prm.loaded) {
      throw wrap(*model_, code::kParams, "parameter '" + prm.name + "'",
                 "parameters are not loaded; a model must have its weights to run");
    }
  }
  const Block& b0 = p.blocks[0];

  // PIR tuple plumbing: builtin.split unpacks a vector value into results.
  std::unordered_map<ValueId, std::vector<ValueId>> unpacked;
  for (const Op& op : b0.ops) {
    if (op.type != "builtin.split" || op.inputs.empty() || op.inputs[0].args.empty()) continue;
    std::vector<ValueId> results;
    for (const OpSlot& s : op.outputs)
      for (ValueId v : s.args) results.push_back(v);
    unpacked[op.inputs[0].args[0]] = results;
  }

  // Unsupported op type -> (ops, blocks holding them).
  std::map<std::string, std::pair<size_t, std::set<int32_t>>> unsupported;
  for (size_t i = 0; i < b0.ops.size(); ++i) {
    const Op& op = b0.ops[i];
    if (passive_ops().count(op.type)) continue;
    // Ops whose every output was constant-folded need not run.
    bool all_const = true, any_output = false;
    for (const OpSlot& s : op.outputs) {
      for (ValueId v : s.args) {
        any_output = true;
        if (v == kNoValue || !p.values[v].constant) all_const = false;
      }
    }
    if (any_output && all_const) continue;
    const OpDef* def = find_op_for_type(op.type);
    if (!def) {
      auto& u = unsupported[op.type];
      ++u.first;
      u.second.insert(b0.idx);
      continue;
    }
    Node n;
    n.def = def;
    n.source = &op;
    n.source_index = i;
    bool pir = p.format == ProgramFormat::Pir;
    auto expand = [&](ValueId v, std::vector<ValueId>* out, bool is_output) {
      if (v == kNoValue) return;
      const Value& val = p.values[v];
      if (!is_output && !val.elements.empty()) {
        out->insert(out->end(), val.elements.begin(), val.elements.end());
        return;
      }
      auto it = is_output ? unpacked.find(v) : unpacked.end();
      if (it != unpacked.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return;
      }
      out->push_back(v);
    };
    auto map_slots = [&](const std::vector<std::string>& names, const std::vector<OpSlot>& slots,
                         const std::vector<int>& pir_map, bool is_output) {
      std::vector<std::vector<ValueId>> groups(names.size());
      for (size_t c = 0; c < names.size(); ++c) {
        if (pir) {
          int idx = pir_map.empty() ? static_cast<int>(c) : pir_map[c];
          if (idx < 0 || static_cast<size_t>(idx) >= slots.size()) continue;
          for (ValueId v : slots[idx].args) expand(v, &groups[c], is_output);
        } else {
          std::string name = names[c];
          if (name.empty()) continue;
          bool variadic = name.back() == '*';
          if (variadic) name.pop_back();
          for (const OpSlot& s : slots) {
            if (s.name != name) continue;
            if (variadic) {
              groups[c] = s.args;
            } else if (!s.args.empty()) {
              groups[c].push_back(s.args[0]);
            }
          }
        }
      }
      return groups;
    };
    n.inputs = map_slots(def->legacy_inputs, op.inputs, def->pir_inputs, false);
    n.outputs = map_slots(def->legacy_outputs, op.outputs, {}, true);
    // Legacy training-style ops write running statistics back into their
    // persistable inputs (batch_norm's MeanOut/VarianceOut are the Mean/
    // Variance variables). At inference those writes must not clobber the
    // parameters, so such outputs are dropped.
    for (auto& g : n.outputs) {
      g.erase(std::remove_if(g.begin(), g.end(),
                             [&](ValueId v) {
                               const Value& val = p.values[v];
                               return val.param_index >= 0 || val.constant != nullptr;
                             }),
              g.end());
    }
    if (def->prepare) {
      try {
        n.state = def->prepare(PrepareCtx{p, n, AttrReader(op)});
      } catch (const OpError& e) {
        throw wrap(*model_, e.code, n.where(), e.what());
      }
    }
    nodes_.push_back(std::move(n));
  }
  if (!unsupported.empty()) {
    // Sub-blocks (bodies of while / conditional_block and the like) only run
    // through a control-flow op of block 0, which is then unsupported too; so
    // they matter only when the model fails anyway, and the one error lists
    // every unsupported op type of every block.
    for (size_t bi = 1; bi < p.blocks.size(); ++bi) {
      for (const Op& op : p.blocks[bi].ops) {
        if (passive_ops().count(op.type) || find_op_for_type(op.type)) continue;
        auto& u = unsupported[op.type];
        ++u.first;
        u.second.insert(p.blocks[bi].idx);
      }
    }
    std::string list;
    size_t total = 0;
    for (const auto& kv : unsupported) {
      std::string blocks;
      for (int32_t b : kv.second.second) blocks += (blocks.empty() ? "" : ", ") + std::to_string(b);
      list += (list.empty() ? "" : ", ") + kv.first + " x" + std::to_string(kv.second.first) +
              (kv.second.second.size() == 1 ? " (block " : " (blocks ") + blocks + ")";
      total += kv.second.first;
    }
    throw wrap(*model_, code::kUnsupported, "",
               std::to_string(unsupported.size()) + " unsupported op type(s) (" +
                   std::to_string(total) + " ops): " + list);
  }

  if (options.hpi || !options.passes.empty()) {
    PassGraph g{p, nodes_, [](const std::string& name) { return find_op_by_name(name); }};
    try {
      pass_report_ = run_passes(g, options.hpi ? std::vector<std::string>{} : options.passes);
    } catch (const std::invalid_argument& e) {
      throw wrap(*model_, code::kInput, "", e.what());
    } catch (const OpError& e) {
      throw wrap(*model_, e.code, "graph passes", e.what());
    }
  }
  hpi_ = options.hpi;
  if (options.hpi)
    dnnl_nodes_ = bind_dnnl_kernels(p, &nodes_, HpiOptions{options.bf16}, &path_logs_);

  // Static values: parameters and folded constants.
  static_values_.resize(p.values.size());
  for (size_t v = 0; v < p.values.size(); ++v) {
    const Value& val = p.values[v];
    const Tensor* t = nullptr;
    if (val.constant)
      t = val.constant.get();
    else if (val.param_index >= 0)
      t = &p.params[val.param_index].tensor;
    if (!t) continue;
    RTensor& r = static_values_[v];
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

  // Availability check and buffer release plan.
  std::vector<bool> available(p.values.size(), false);
  for (size_t v = 0; v < p.values.size(); ++v) available[v] = static_values_[v].data != nullptr;
  for (const IoBinding& io : p.inputs) available[io.value] = true;
  is_graph_output_.assign(p.values.size(), false);
  for (const IoBinding& io : p.outputs) is_graph_output_[io.value] = true;
  std::vector<int64_t> last_use(p.values.size(), -1);
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const Node& n = nodes_[k];
    for (const auto& g : n.inputs) {
      for (ValueId v : g) {
        if (!available[v]) {
          throw wrap(*model_, code::kFormat, n.where(),
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
      throw wrap(*model_, code::kFormat, "output '" + io.name + "'",
                 "graph output is not produced by any op");
    }
  }
  release_after_.assign(nodes_.size(), {});
  for (size_t k = 0; k < nodes_.size(); ++k) {
    for (const auto& g : nodes_[k].outputs) {
      for (ValueId v : g) {
        if (last_use[v] < 0 && !is_graph_output_[v]) release_after_[k].push_back(v);
      }
    }
  }
  for (size_t v = 0; v < p.values.size(); ++v) {
    if (last_use[v] >= 0 && !is_graph_output_[v] && !static_values_[v].data)
      release_after_[static_cast<size_t>(last_use[v])].push_back(static_cast<ValueId>(v));
  }
}

Executor::~Executor() = default;

std::vector<NamedTensor> Executor::run(const std::vector<NamedTensor>& inputs, int threads) {
  const Program& p = model_->program;
  omp_set_num_threads(threads < 1 ? 1 : threads);

  std::unique_ptr<BufferPool> pool;
  {
    std::lock_guard<std::mutex> lock(pools_mu_);
    if (!free_pools_.empty()) {
      pool = std::move(free_pools_.back());
      free_pools_.pop_back();
    }
  }
  if (!pool) pool = std::make_unique<BufferPool>();

  std::vector<NamedTensor> results;
  {
    std::vector<RTensor> env = static_values_;
    // Inputs: every graph input exactly once, with matching dtype/rank/dims.
    std::vector<bool> seen(p.inputs.size(), false);
    for (const NamedTensor& in : inputs) {
      size_t k = 0;
      while (k < p.inputs.size() && p.inputs[k].name != in.name) ++k;
      if (k == p.inputs.size()) {
        std::string names;
        for (const IoBinding& io : p.inputs) names += (names.empty() ? "" : ", ") + io.name;
        throw wrap(*model_, code::kInput, "input '" + in.name + "'",
                   "the model has no such input (inputs: " + names + ")");
      }
      if (seen[k]) throw wrap(*model_, code::kInput, "input '" + in.name + "'", "given twice");
      seen[k] = true;
      const Value& decl = p.values[p.inputs[k].value];
      if (decl.type.dtype != DType::Undefined && in.dtype != decl.type.dtype) {
        throw wrap(*model_, code::kInput, "input '" + in.name + "'",
                   std::string("dtype ") + dtype_name(in.dtype) + " does not match the model's " +
                       dtype_name(decl.type.dtype));
      }
      const auto& dd = decl.type.dims;
      bool ok = dd.size() == in.dims.size();
      for (size_t d = 0; ok && d < dd.size(); ++d) {
        if (in.dims[d] < 0 || (dd[d] >= 0 && dd[d] != in.dims[d])) ok = false;
      }
      if (!ok) {
        throw wrap(*model_, code::kInput, "input '" + in.name + "'",
                   "shape " + shape_str(in.dims) + " does not match the model's " + shape_str(dd) +
                       " (-1 = any size)");
      }
      uint64_t want = dtype_size(in.dtype);
      for (int64_t d : in.dims) want *= static_cast<uint64_t>(d);
      if (want != in.data.size()) {
        throw wrap(*model_, code::kInput, "input '" + in.name + "'",
                   "data has " + std::to_string(in.data.size()) + " bytes but shape " +
                       shape_str(in.dims) + " needs " + std::to_string(want));
      }
      RTensor& t = env[p.inputs[k].value];
      t.dtype = in.dtype;
      t.dims = in.dims;
      t.nbytes = in.data.size();
      t.owner = pool->get(t.nbytes);
      t.data = t.owner.get();
      if (t.nbytes) std::memcpy(t.data, in.data.data(), t.nbytes);
    }
    for (size_t k = 0; k < p.inputs.size(); ++k) {
      if (!seen[k]) {
        throw wrap(*model_, code::kInput, "input '" + p.inputs[k].name + "'", "missing");
      }
    }

    // PIF_PROFILE=1: time per op type, printed to stderr after each run.
    static const bool profile = [] {
      const char* e = std::getenv("PIF_PROFILE");
      return e && *e && std::string(e) != "0";
    }();
    std::map<std::string, std::pair<double, int>> prof;
    auto run_started = std::chrono::steady_clock::now();
    for (size_t k = 0; k < nodes_.size(); ++k) {
      const Node& n = nodes_[k];
      auto op_started = std::chrono::steady_clock::now();
      RunCtx ctx{n, {}, {}, threads};
      ctx.in.resize(n.inputs.size());
      std::vector<std::unique_ptr<RTensor>> plain;  // plain copies for layout-unaware kernels
      for (size_t s = 0; s < n.inputs.size(); ++s) {
        for (ValueId v : n.inputs[s]) {
          if (!env[v].data) {
            throw wrap(*model_, code::kRun, n.where(),
                       "an input was not computed by its producer (unsupported output?)");
          }
          if (env[v].layout && !n.def->layout_aware) {
            plain.push_back(std::make_unique<RTensor>());
            dnnl_backend::to_plain(env[v], plain.back().get());
            ctx.in[s].push_back(plain.back().get());
          } else {
            ctx.in[s].push_back(&env[v]);
          }
        }
      }
      ctx.out.resize(n.outputs.size());
      for (size_t s = 0; s < n.outputs.size(); ++s) {
        for (ValueId v : n.outputs[s]) {
          env[v] = RTensor();
          ctx.out[s].push_back(&env[v]);
        }
      }
      try {
        n.def->infer(ctx);
        for (size_t s = 0; s < ctx.out.size(); ++s) {
          for (size_t j = 0; j < ctx.out[s].size(); ++j) {
            RTensor* t = ctx.out[s][j];
            if (t->dtype == DType::Undefined) continue;  // output not computed
            uint64_t nb = dtype_size(t->dtype);
            for (int64_t d : t->dims) {
              if (d < 0) op_fail("inferred a negative dimension " + shape_str(t->dims));
              nb *= static_cast<uint64_t>(d);
            }
            t->nbytes = std::max(nb, t->nbytes);  // blocked layouts may pad
            nb = t->nbytes;
            if (n.def->alias_input0 && s == 0 && j == 0 && ctx.input(0) &&
                ctx.input(0)->nbytes == nb) {
              t->owner = ctx.input(0)->owner;
              t->data = ctx.input(0)->data;
            } else {
              t->owner = pool->get(nb);
              t->data = t->owner.get();
            }
          }
        }
        n.def->run(ctx);
      } catch (const OpError& e) {
        throw wrap(*model_, e.code == code::kFormat ? code::kRun : e.code, n.where(), e.what());
      }
      for (ValueId v : release_after_[k]) env[v] = RTensor();
      if (profile) {
        auto& e = prof[n.def->name];
        e.first +=
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - op_started)
                .count();
        e.second += 1;
      }
    }
    if (profile) {
      double total =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - run_started)
              .count();
      std::vector<std::pair<double, std::string>> rows;
      for (const auto& kv : prof) rows.emplace_back(kv.second.first, kv.first);
      std::sort(rows.rbegin(), rows.rend());
      std::fprintf(stderr, "[pif profile] %s: %.2f ms, %zu nodes, %d thread(s)\n",
                   model_->program_file.c_str(), total, nodes_.size(), threads);
      for (const auto& r : rows) {
        std::fprintf(stderr, "  %-28s %9.2f ms %5.1f%% x%d\n", r.second.c_str(), r.first,
                     total > 0 ? 100.0 * r.first / total : 0.0, prof[r.second].second);
      }
    }

    for (const IoBinding& io : p.outputs) {
      RTensor plain;
      if (env[io.value].layout) dnnl_backend::to_plain(env[io.value], &plain);
      const RTensor& t = env[io.value].layout ? plain : env[io.value];
      NamedTensor out;
      out.name = io.name;
      out.dtype = t.dtype;
      out.dims = t.dims;
      out.data.assign(static_cast<const uint8_t*>(t.data),
                      static_cast<const uint8_t*>(t.data) + t.nbytes);
      results.push_back(std::move(out));
    }
  }  // env destroyed: buffers return to the pool

  std::lock_guard<std::mutex> lock(pools_mu_);
  free_pools_.push_back(std::move(pool));
  return results;
}

}  // namespace pif
