// Normal-mode executor: lowers block 0 of a loaded program to Nodes (one per
// computing op), prepares them once at load, and runs them in program
// (topological) order with run-time shape inference. Activation buffers come
// from a size-keyed pool and return to it after their last consumer, so peak
// memory tracks the live set, not the whole graph.
//
// Concurrency: run() is safe to call from several threads at once. Each call
// takes its own scratch (buffer pool) from a free list, so concurrent runs
// never share activations; parameters are shared read-only.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "graph/loaded_model.h"
#include "graph/op_def.h"
#include "kernels/dnnl/common.h"

namespace pif {

struct NamedTensor {
  std::string name;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

class BufferPool;

struct ExecutorOptions {
  // High-performance mode: the fusion passes (passes/fuse.h), then oneDNN
  // kernels for every node they cover (kernels/dnnl), reference otherwise.
  bool hpi = false;
  // hpi: convolutions and matrix products in bf16 (needs AVX512-BF16/AMX;
  // the constructor throws PIF_UNSUPPORTED on other CPUs).
  bool bf16 = false;
  // Passes to apply without hpi (tests: each pass alone on the reference
  // kernels). Ignored when hpi is set (all passes run).
  std::vector<std::string> passes;
  // hpi int8: the convolutions to run quantised (kernels/dnnl/conv_int8.cc).
  std::shared_ptr<const QuantTable> quant;
};

// A fused convolution of an hpi graph (pif.fused_conv2d), by ordinal.
struct ConvLayer {
  size_t node = 0;
  int64_t out_channels = 0, in_channels = 0, kh = 0, kw = 0, groups = 1;
  bool int8 = false;  // bound to the int8 kernel
};

// Calibration: called after each fused convolution runs, with its ordinal and
// its float input (in the layout it arrived in).
using ConvInputObserver = std::function<void(int ordinal, const RTensor& input)>;

class Executor {
 public:
  // Lowers and prepares. Throws ModelError: PIF_MODEL_UNSUPPORTED listing
  // every unsupported op type with its count, or PIF_MODEL_FORMAT naming the
  // op whose attributes are invalid.
  explicit Executor(std::shared_ptr<const LoadedModel> model, const ExecutorOptions& options = {});
  ~Executor();

  const Program& program() const { return model_->program; }
  const std::vector<Node>& nodes() const { return nodes_; }
  // What the passes did ("name" -> rewrites) and how many nodes run on oneDNN.
  const std::vector<std::pair<std::string, int>>& pass_report() const { return pass_report_; }
  int dnnl_nodes() const { return dnnl_nodes_; }
  // hpi: per node (nodes() order), the configurations it ran off its fused
  // oneDNN primitive (a degraded oneDNN path or the reference kernel), as
  // recorded so far (primitives are made at the first run of each shape).
  std::vector<std::vector<PathNote>> path_notes() const;
  bool hpi() const { return hpi_; }
  // hpi: whether node i runs a oneDNN kernel (else its reference kernel).
  bool dnnl_bound(size_t i) const { return i < path_logs_.size() && path_logs_[i] != nullptr; }

  // Runs the graph. Inputs are matched by name (all graph inputs required);
  // outputs come back in graph-output order. The graph runs on an OpenMP host
  // thread (runtime/omp_host.h) with `threads` OpenMP threads; the caller
  // waits. Throws ModelError (PIF_INPUT for bad inputs, PIF_RUN for failures
  // inside an op). `observe` (calibration) sees every fused convolution's input.
  std::vector<NamedTensor> run(const std::vector<NamedTensor>& inputs, int threads,
                               const ConvInputObserver* observe = nullptr);
  // hpi: the fused convolutions, by ordinal.
  const std::vector<ConvLayer>& conv_layers() const { return conv_layers_; }

 private:
  std::vector<NamedTensor> run_here(const std::vector<NamedTensor>& inputs, int threads,
                                    const ConvInputObserver* observe);

  std::shared_ptr<const LoadedModel> model_;
  std::vector<Node> nodes_;
  std::vector<RTensor> static_values_;               // params and folded constants
  std::vector<std::vector<ValueId>> release_after_;  // per node
  std::vector<bool> is_graph_output_;
  std::vector<std::pair<std::string, int>> pass_report_;
  int dnnl_nodes_ = 0;
  bool hpi_ = false;
  std::vector<std::shared_ptr<const PathLog>> path_logs_;  // hpi: per node, null if unbound
  std::vector<int> conv_ordinal_;                          // per node: fused-conv ordinal or -1
  std::vector<ConvLayer> conv_layers_;

  std::mutex pools_mu_;
  std::vector<std::unique_ptr<BufferPool>> free_pools_;
};

}  // namespace pif
