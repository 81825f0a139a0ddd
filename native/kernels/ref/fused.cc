// Reference kernels of the fused ops (graph/fused_ops.h): the plain conv2d /
// matmul reference kernel, then bias, then the post-ops in order. They are the
// oracle that every fusion pass and every fast backend is checked against.
#include <omp.h>

#include "graph/fused_ops.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {

void apply_post_ops(const std::vector<PostOp>& post, const std::vector<const RTensor*>& extra,
                    RTensor* out) {
  float* y = out->ptr<float>();
  int64_t n = out->numel();
  for (const PostOp& p : post) {
    if (p.kind == PostOp::Kind::Unary) {
      const UnState s = p.unary;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) y[i] = apply_unary(s, y[i]);
      continue;
    }
    if (p.input >= extra.size() || !extra[p.input]) op_fail("fused op: missing post-op input");
    const RTensor& e = *extra[p.input];
    expect_f32(e, "post-op input");
    if (e.dims != out->dims) {
      op_fail("fused op: post-op input shape " + shape_str(e.dims) + " differs from output " +
              shape_str(out->dims));
    }
    const float* z = e.ptr<float>();
    if (p.bin == BinKind::Add) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) y[i] += z[i];
    } else if (p.bin == BinKind::Mul) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) y[i] *= z[i];
    } else {
      op_fail("fused op: unsupported binary post-op");
    }
  }
}

namespace {

std::vector<const RTensor*> extra_inputs(const RunCtx& c, size_t slot) {
  return c.in.size() > slot ? c.in[slot] : std::vector<const RTensor*>{};
}

// The plain op's RunCtx for a fused node: same inputs, the plain op's state.
struct PlainCall {
  Node node;
  RTensor weight, bias;
  RunCtx ctx;
  PlainCall(const RunCtx& c, std::shared_ptr<const void> state)
      : node(c.node), ctx{node, {}, {}, c.threads} {
    node.state = std::move(state);
  }
};

void infer_fused_conv(RunCtx& c) {
  const auto& st = c.node.attrs<FusedConvState>();
  PlainCall pc(c, std::shared_ptr<const void>(c.node.state, &st.conv));
  pc.weight = rtensor_of(st.weight);
  pc.ctx.in = {{c.input(0)}, {&pc.weight}};
  pc.ctx.out = {{c.output(0)}};
  find_op_by_name("conv2d")->infer(pc.ctx);
}

void run_fused_conv(RunCtx& c) {
  const auto& st = c.node.attrs<FusedConvState>();
  PlainCall pc(c, std::shared_ptr<const void>(c.node.state, &st.conv));
  pc.weight = rtensor_of(st.weight);
  pc.ctx.in = {{c.input(0)}, {&pc.weight}, {}};
  if (st.bias.dtype != DType::Undefined) {
    pc.bias = rtensor_of(st.bias);
    pc.ctx.in[2].push_back(&pc.bias);
  }
  pc.ctx.out = {{c.output(0)}};
  find_op_by_name("conv2d")->run(pc.ctx);
  apply_post_ops(st.post, extra_inputs(c, kFusedConvExtra), c.output(0));
}

void infer_fused_matmul(RunCtx& c) {
  const auto& st = c.node.attrs<FusedMatmulState>();
  PlainCall pc(c, std::shared_ptr<const void>(c.node.state, &st.mm));
  pc.ctx.in = {{c.input(0)}, {c.input(1)}};
  pc.ctx.out = {{c.output(0)}};
  find_op_by_name("matmul")->infer(pc.ctx);
}

void run_fused_matmul(RunCtx& c) {
  const auto& st = c.node.attrs<FusedMatmulState>();
  PlainCall pc(c, std::shared_ptr<const void>(c.node.state, &st.mm));
  pc.ctx.in = {{c.input(0)}, {c.input(1)}};
  pc.ctx.out = {{c.output(0)}};
  find_op_by_name("matmul")->run(pc.ctx);
  RTensor* out = c.output(0);
  if (st.bias.dtype != DType::Undefined) {
    int64_t n = st.bias.numel();
    if (out->dims.empty() || out->dims.back() != n)
      op_fail("fused matmul: bias of " + std::to_string(n) + " values for output " +
              shape_str(out->dims));
    const float* b = reinterpret_cast<const float*>(st.bias.data());
    float* y = out->ptr<float>();
    int64_t rows = out->numel() / (n ? n : 1);
#pragma omp parallel for schedule(static) if (rows * n > (1 << 16))
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < n; ++j) y[r * n + j] += b[j];
  }
  apply_post_ops(st.post, extra_inputs(c, kFusedMatmulExtra), out);
}

}  // namespace

void register_fused_ops(std::vector<OpDef>* t) {
  // No Paddle op types: these exist only after the fusion passes.
  t->push_back(make_op_def(kFusedConvName, {}, {}, {}, nullptr, infer_fused_conv, run_fused_conv));
  t->push_back(
      make_op_def(kFusedMatmulName, {}, {}, {}, nullptr, infer_fused_matmul, run_fused_matmul));
}

}  // namespace pif
