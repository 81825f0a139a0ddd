#include "runtime/executor.h"

#include <omp.h>

#include <chrono>
#include <cstdio>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kernels/dnnl/common.h"
#include "kernels/registry.h"
#include "passes/fuse.h"
#include "runtime/lower.h"
#include "runtime/memory_plan.h"
#include "runtime/omp_host.h"

namespace pif {

namespace {

void check_options(const LoadedModel& m, const ExecutorOptions& options) {
  if (options.bf16 && !options.hpi)
    throw model_error(m, code::kUnsupportedMode, "",
                      "precision bf16 needs the high-performance mode");
  if (options.bf16 && !dnnl_backend::cpu_has_bf16()) {
    throw model_error(m, code::kUnsupportedMode, "",
                      "precision bf16 needs a CPU with AVX512-BF16 or AMX (this CPU has neither); "
                      "use precision fp32");
  }
  const Program& p = m.program;
  if (p.blocks.empty()) throw model_error(m, code::kFormat, "", "program has no blocks");
  for (const Parameter& prm : p.params) {
    if (!prm.loaded) {
      throw model_error(m, code::kParams, "parameter '" + prm.name + "'",
                        "parameters are not loaded; a model must have its weights to run");
    }
  }
}

// Checks one given input against the model's declaration of graph input k.
void check_input(const LoadedModel& m, const NamedTensor& in, size_t k) {
  const Program& p = m.program;
  const Value& decl = p.values[p.inputs[k].value];
  const std::string where = "input '" + in.name + "'";
  if (decl.type.dtype != DType::Undefined && in.dtype != decl.type.dtype) {
    throw model_error(m, code::kInput, where,
                      std::string("dtype ") + dtype_name(in.dtype) +
                          " does not match the model's " + dtype_name(decl.type.dtype));
  }
  const auto& dd = decl.type.dims;
  bool ok = dd.size() == in.dims.size();
  for (size_t d = 0; ok && d < dd.size(); ++d) {
    if (in.dims[d] < 0 || (dd[d] >= 0 && dd[d] != in.dims[d])) ok = false;
  }
  if (!ok) {
    throw model_error(m, code::kInput, where,
                      "shape " + shape_str(in.dims) + " does not match the model's " +
                          shape_str(dd) + " (-1 = any size)");
  }
  uint64_t want = dtype_size(in.dtype);
  for (int64_t d : in.dims) want *= static_cast<uint64_t>(d);
  if (want != in.data.size()) {
    throw model_error(m, code::kInput, where,
                      "data has " + std::to_string(in.data.size()) + " bytes but shape " +
                          shape_str(in.dims) + " needs " + std::to_string(want));
  }
}

// Inputs: every graph input exactly once, with matching dtype/rank/dims,
// copied into pool buffers of `env`.
void bind_inputs(const LoadedModel& m, const std::vector<NamedTensor>& inputs, BufferPool* pool,
                 std::vector<RTensor>* env) {
  const Program& p = m.program;
  std::vector<bool> seen(p.inputs.size(), false);
  for (const NamedTensor& in : inputs) {
    size_t k = 0;
    while (k < p.inputs.size() && p.inputs[k].name != in.name) ++k;
    if (k == p.inputs.size()) {
      std::string names;
      for (const IoBinding& io : p.inputs) names += (names.empty() ? "" : ", ") + io.name;
      throw model_error(m, code::kInput, "input '" + in.name + "'",
                        "the model has no such input (inputs: " + names + ")");
    }
    if (seen[k]) throw model_error(m, code::kInput, "input '" + in.name + "'", "given twice");
    seen[k] = true;
    check_input(m, in, k);
    RTensor& t = (*env)[p.inputs[k].value];
    t.dtype = in.dtype;
    t.dims = in.dims;
    t.nbytes = in.data.size();
    t.owner = pool->get(t.nbytes);
    t.data = t.owner.get();
    if (t.nbytes) std::memcpy(t.data, in.data.data(), t.nbytes);
  }
  for (size_t k = 0; k < p.inputs.size(); ++k) {
    if (!seen[k]) throw model_error(m, code::kInput, "input '" + p.inputs[k].name + "'", "missing");
  }
}

// Gives the outputs of infer() their buffers: input 0's for an aliasing op
// when the sizes match, else the pool's.
void allocate_outputs(RunCtx& ctx, BufferPool* pool) {
  const Node& n = ctx.node;
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
      if (n.def->alias_input0 && s == 0 && j == 0 && ctx.input(0) && ctx.input(0)->nbytes == nb) {
        t->owner = ctx.input(0)->owner;
        t->data = ctx.input(0)->data;
      } else {
        t->owner = pool->get(nb);
        t->data = t->owner.get();
      }
    }
  }
}

// Runs one node on `env`: run-time shape inference, output buffers, kernel.
void run_node(const LoadedModel& m, const Node& n, std::vector<RTensor>* env, BufferPool* pool,
              int threads) {
  RunCtx ctx{n, {}, {}, threads};
  ctx.in.resize(n.inputs.size());
  std::vector<std::unique_ptr<RTensor>> plain;  // plain copies for layout-unaware kernels
  for (size_t s = 0; s < n.inputs.size(); ++s) {
    for (ValueId v : n.inputs[s]) {
      RTensor& t = (*env)[v];
      if (!t.data) {
        throw model_error(m, code::kRun, n.where(),
                          "an input was not computed by its producer (unsupported output?)");
      }
      if (t.layout && !n.def->layout_aware) {
        plain.push_back(std::make_unique<RTensor>());
        dnnl_backend::to_plain(t, plain.back().get());
        ctx.in[s].push_back(plain.back().get());
      } else {
        ctx.in[s].push_back(&t);
      }
    }
  }
  ctx.out.resize(n.outputs.size());
  for (size_t s = 0; s < n.outputs.size(); ++s) {
    for (ValueId v : n.outputs[s]) {
      (*env)[v] = RTensor();
      ctx.out[s].push_back(&(*env)[v]);
    }
  }
  try {
    n.def->infer(ctx);
    allocate_outputs(ctx, pool);
    n.def->run(ctx);
  } catch (const OpError& e) {
    throw model_error(m, e.code == code::kFormat ? code::kRun : e.code, n.where(), e.what());
  }
}

// PIF_PROFILE=1: time per op type, printed to stderr after each run;
// PIF_PROFILE=shapes: per op type and input shapes (which GEMM of a ViT block
// is slow is invisible in one "dnnl.fused_matmul" row).
class Profile {
 public:
  Profile() : started_(std::chrono::steady_clock::now()) {}
  static bool enabled() {
    static const bool on = [] {
      const char* e = std::getenv("PIF_PROFILE");
      return e && *e && std::string(e) != "0";
    }();
    return on;
  }
  static bool by_shape() {
    static const bool on = [] {
      const char* e = std::getenv("PIF_PROFILE");
      return e && std::string(e) == "shapes";
    }();
    return on;
  }
  // The row of node n: its op, and with by_shape() its first two inputs' dims.
  static std::string row(const Node& n, const std::vector<RTensor>& env) {
    std::string r = n.def->name;
    if (!by_shape()) return r;
    for (size_t s = 0; s < n.inputs.size() && s < 2; ++s)
      if (!n.inputs[s].empty()) r += " " + shape_str(env[n.inputs[s][0]].dims);
    return r;
  }
  void add(const std::string& op, std::chrono::steady_clock::time_point op_started) {
    auto& e = prof_[op];
    e.first +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - op_started)
            .count();
    e.second += 1;
  }
  void print(const std::string& file, size_t nodes, int threads) {
    double total =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_)
            .count();
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& kv : prof_) rows.emplace_back(kv.second.first, kv.first);
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "[pif profile] %s: %.2f ms, %zu nodes, %d thread(s)\n", file.c_str(),
                 total, nodes, threads);
    for (const auto& r : rows) {
      std::fprintf(stderr, "  %-40s %9.2f ms %5.1f%% x%d\n", r.second.c_str(), r.first,
                   total > 0 ? 100.0 * r.first / total : 0.0, prof_[r.second].second);
    }
  }

 private:
  std::chrono::steady_clock::time_point started_;
  std::map<std::string, std::pair<double, int>> prof_;
};

// The graph outputs of `env`, in graph-output order and plain layout.
std::vector<NamedTensor> collect_outputs(const Program& p, const std::vector<RTensor>& env) {
  std::vector<NamedTensor> results;
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
  return results;
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
  check_options(*model_, options);
  const Program& p = model_->program;
  nodes_ = lower_program(*model_);
  if (options.hpi || !options.passes.empty()) {
    PassGraph g{p, nodes_, [](const std::string& name) { return find_op_by_name(name); }};
    try {
      pass_report_ = run_passes(g, options.hpi ? std::vector<std::string>{} : options.passes);
    } catch (const std::invalid_argument& e) {
      throw model_error(*model_, code::kInput, "", e.what());
    } catch (const OpError& e) {
      throw model_error(*model_, e.code, "graph passes", e.what());
    }
  }
  hpi_ = options.hpi;
  conv_ordinal_.assign(nodes_.size(), -1);
  int convs = 0;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (nodes_[k].def->name != kFusedConvName) continue;
    conv_ordinal_[k] = convs++;
    const FusedConvState& st = nodes_[k].attrs<FusedConvState>();
    ConvLayer l;
    l.node = k;
    if (st.weight.dims.size() == 4) {
      l.out_channels = st.weight.dims[0];
      l.groups = st.conv.groups;
      l.in_channels = st.weight.dims[1] * l.groups;
      l.kh = st.weight.dims[2];
      l.kw = st.weight.dims[3];
    }
    conv_layers_.push_back(l);
  }
  if (options.hpi)
    dnnl_nodes_ =
        bind_dnnl_kernels(p, &nodes_, HpiOptions{options.bf16, options.quant}, &path_logs_);
  for (ConvLayer& l : conv_layers_)
    l.int8 = nodes_[l.node].def->name == std::string("dnnl.qconv2d");
  MemoryPlan plan = plan_memory(*model_, nodes_);
  static_values_ = std::move(plan.static_values);
  release_after_ = std::move(plan.release_after);
  is_graph_output_ = std::move(plan.is_graph_output);
}

Executor::~Executor() = default;

std::vector<NamedTensor> Executor::run(const std::vector<NamedTensor>& inputs, int threads,
                                       const ConvInputObserver* observe) {
  std::vector<NamedTensor> results;
  run_on_omp_host([&] { results = run_here(inputs, threads, observe); });
  return results;
}

std::vector<NamedTensor> Executor::run_here(const std::vector<NamedTensor>& inputs, int threads,
                                            const ConvInputObserver* observe) {
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
    bind_inputs(*model_, inputs, pool.get(), &env);
    const bool profile = Profile::enabled();
    Profile prof;
    for (size_t k = 0; k < nodes_.size(); ++k) {
      auto op_started = std::chrono::steady_clock::now();
      run_node(*model_, nodes_[k], &env, pool.get(), threads);
      if (observe && conv_ordinal_[k] >= 0)
        (*observe)(conv_ordinal_[k], env[nodes_[k].inputs[0][0]]);
      if (profile) prof.add(Profile::row(nodes_[k], env), op_started);
      for (ValueId v : release_after_[k]) env[v] = RTensor();
    }
    if (profile) prof.print(model_->program_file, nodes_.size(), threads);
    results = collect_outputs(p, env);
  }  // env destroyed: buffers return to the pool

  std::lock_guard<std::mutex> lock(pools_mu_);
  free_pools_.push_back(std::move(pool));
  return results;
}

}  // namespace pif
