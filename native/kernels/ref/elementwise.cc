// Binary elementwise ops with Paddle's broadcasting: legacy elementwise_*
// ops align Y with X starting at `axis` (-1 = NumPy trailing alignment); PIR
// ops broadcast NumPy-style. float32, int32 and int64 (shape arithmetic).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// Pads `small` to the rank of `big` the way Paddle's legacy axis rule does.
std::vector<int64_t> align_to(const std::vector<int64_t>& big, std::vector<int64_t> small,
                              int64_t axis) {
  int64_t rb = static_cast<int64_t>(big.size());
  if (axis < 0 || static_cast<int64_t>(small.size()) == rb) return small;
  // Paddle trims trailing singleton dims of Y when they would overflow.
  while (!small.empty() && axis + static_cast<int64_t>(small.size()) > rb && small.back() == 1)
    small.pop_back();
  int64_t rs = static_cast<int64_t>(small.size());
  if (axis + rs > rb) {
    op_fail("cannot align shape " + shape_str(small) + " with " + shape_str(big) + " at axis " +
            std::to_string(axis));
  }
  std::vector<int64_t> out(static_cast<size_t>(rb), 1);
  for (int64_t i = 0; i < rs; ++i)
    out[static_cast<size_t>(axis + i)] = small[static_cast<size_t>(i)];
  return out;
}

void aligned_shapes(const RunCtx& c, std::vector<int64_t>* a, std::vector<int64_t>* b) {
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& y = need_input(c, 1, "Y");
  int64_t axis = c.node.attrs<BinState>().axis;
  *a = x.dims;
  *b = y.dims;
  if (axis >= 0 && a->size() != b->size()) {
    if (b->size() < a->size())
      *b = align_to(*a, *b, axis);
    else
      *a = align_to(*b, *a, axis);
  }
}

void infer_binary(RunCtx& c) {
  std::vector<int64_t> a, b;
  aligned_shapes(c, &a, &b);
  const RTensor& x = *c.input(0);
  const RTensor& y = *c.input(1);
  if (x.dtype != y.dtype) {
    op_fail(std::string("operand dtypes differ: ") + dtype_name(x.dtype) + " and " +
            dtype_name(y.dtype));
  }
  set_output(c.output(0), x.dtype, broadcast_shapes(a, b));
}

template <typename T>
inline T apply(BinKind k, T a, T b) {
  switch (k) {
    case BinKind::Add: return a + b;
    case BinKind::Sub: return a - b;
    case BinKind::Mul: return a * b;
    case BinKind::Div: return a / b;
    case BinKind::Pow: return static_cast<T>(std::pow(a, b));
    case BinKind::Max: return a > b ? a : b;
    case BinKind::Min: return a < b ? a : b;
    case BinKind::FloorDiv: return static_cast<T>(std::floor(static_cast<double>(a) / b));
    case BinKind::Mod: {
      T r = static_cast<T>(std::fmod(a, b));
      return (r != 0 && ((r < 0) != (b < 0))) ? static_cast<T>(r + b) : r;
    }
  }
  return a;
}

template <BinKind K, typename T>
void inner(const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = apply<T>(K, a[i], b[i]);
  } else if (sa == 1) {
    T bv = b[0];
    for (int64_t i = 0; i < n; ++i) o[i] = apply<T>(K, a[i], bv);
  } else if (sb == 1) {
    T av = a[0];
    for (int64_t i = 0; i < n; ++i) o[i] = apply<T>(K, av, b[i]);
  } else {
    T v = apply<T>(K, a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  }
}

// Broadcast loop over coalesced dims: the innermost dim is a tight loop; the
// outer index is split across threads.
template <BinKind K, typename T>
void binary_loop(const T* a, std::vector<int64_t> ad, const T* b, std::vector<int64_t> bd, T* o,
                 const std::vector<int64_t>& od) {
  size_t r = od.size();
  ad.insert(ad.begin(), r - ad.size(), 1);
  bd.insert(bd.begin(), r - bd.size(), 1);
  // Drop unit output dims, then merge neighbours with the same broadcast pattern.
  std::vector<int64_t> dims, ba, bb;
  for (size_t i = 0; i < r; ++i) {
    if (od[i] == 1) continue;
    bool xa = ad[i] == 1, xb = bd[i] == 1;
    if (!dims.empty() && ba.back() == xa && bb.back() == xb) {
      dims.back() *= od[i];
    } else {
      dims.push_back(od[i]);
      ba.push_back(xa);
      bb.push_back(xb);
    }
  }
  if (dims.empty()) {
    o[0] = apply<T>(K, a[0], b[0]);
    return;
  }
  size_t nd = dims.size();
  std::vector<int64_t> sa(nd), sb(nd);
  int64_t pa = 1, pb = 1;
  for (size_t i = nd; i-- > 0;) {
    sa[i] = ba[i] ? 0 : pa;
    sb[i] = bb[i] ? 0 : pb;
    if (!ba[i]) pa *= dims[i];
    if (!bb[i]) pb *= dims[i];
  }
  int64_t n = dims[nd - 1];
  int64_t outer = 1;
  for (size_t i = 0; i + 1 < nd; ++i) outer *= dims[i];
  int64_t total = outer * n;
#pragma omp parallel for schedule(static) if (total > (1 << 16))
  for (int64_t row = 0; row < outer; ++row) {
    int64_t rem = row, oa = 0, ob = 0;
    for (size_t i = nd - 1; i-- > 0;) {
      int64_t idx = rem % dims[i];
      rem /= dims[i];
      oa += idx * sa[i];
      ob += idx * sb[i];
    }
    inner<K, T>(a + oa, sa[nd - 1], b + ob, sb[nd - 1], o + row * n, n);
  }
}

template <typename T>
void run_typed(RunCtx& c, BinKind k, const std::vector<int64_t>& ad,
               const std::vector<int64_t>& bd) {
  const T* a = c.input(0)->ptr<T>();
  const T* b = c.input(1)->ptr<T>();
  RTensor* out = c.output(0);
  T* o = out->ptr<T>();
  const auto& od = out->dims;
  if (out->numel() == 0) return;
  switch (k) {
#define PIF_BIN_CASE(K) \
  case BinKind::K: binary_loop<BinKind::K, T>(a, ad, b, bd, o, od); break;
    PIF_BIN_CASE(Add)
    PIF_BIN_CASE(Sub)
    PIF_BIN_CASE(Mul)
    PIF_BIN_CASE(Div)
    PIF_BIN_CASE(Pow)
    PIF_BIN_CASE(Max)
    PIF_BIN_CASE(Min)
    PIF_BIN_CASE(FloorDiv)
    PIF_BIN_CASE(Mod)
#undef PIF_BIN_CASE
  }
}

void run_binary(RunCtx& c) {
  std::vector<int64_t> a, b;
  aligned_shapes(c, &a, &b);
  BinKind k = c.node.attrs<BinState>().kind;
  switch (c.input(0)->dtype) {
    case DType::Float32: run_typed<float>(c, k, a, b); break;
    case DType::Float64: run_typed<double>(c, k, a, b); break;
    case DType::Int32:
      if (k == BinKind::Div || k == BinKind::FloorDiv || k == BinKind::Mod) {
        // Integer division by zero is undefined behaviour in C++; Paddle
        // errors too.
        const RTensor& y = *c.input(1);
        for (int64_t i = 0; i < y.numel(); ++i)
          if (y.ptr<int32_t>()[i] == 0) op_fail("integer division by zero");
      }
      run_typed<int32_t>(c, k, a, b);
      break;
    case DType::Int64:
      if (k == BinKind::Div || k == BinKind::FloorDiv || k == BinKind::Mod) {
        const RTensor& y = *c.input(1);
        for (int64_t i = 0; i < y.numel(); ++i)
          if (y.ptr<int64_t>()[i] == 0) op_fail("integer division by zero");
      }
      run_typed<int64_t>(c, k, a, b);
      break;
    default: op_fail(std::string("unsupported dtype ") + dtype_name(c.input(0)->dtype));
  }
}

template <BinKind K>
std::shared_ptr<const void> prepare_binary(const PrepareCtx& c) {
  // PIR ops broadcast NumPy-style; legacy ops carry `axis` (default -1).
  bool pir = c.node.source->type.rfind("pd_op.", 0) == 0;
  return make_state<BinState>(K, pir ? int64_t(-1) : c.attr.i("axis", -1));
}

OpDef binary(const char* name, std::vector<std::string> types, PrepareFn prep) {
  return make_op_def(name, std::move(types), {"X", "Y"}, {"Out"}, prep, infer_binary, run_binary);
}

}  // namespace

void register_elementwise_ops(std::vector<OpDef>* t) {
  t->push_back(
      binary("add", {"elementwise_add", "pd_op.add", "pd_op.add_"}, prepare_binary<BinKind::Add>));
  t->push_back(binary("subtract", {"elementwise_sub", "pd_op.subtract", "pd_op.subtract_"},
                      prepare_binary<BinKind::Sub>));
  t->push_back(binary("multiply", {"elementwise_mul", "pd_op.multiply", "pd_op.multiply_"},
                      prepare_binary<BinKind::Mul>));
  t->push_back(binary("divide", {"elementwise_div", "pd_op.divide", "pd_op.divide_"},
                      prepare_binary<BinKind::Div>));
  t->push_back(binary("elementwise_pow", {"elementwise_pow", "pd_op.elementwise_pow"},
                      prepare_binary<BinKind::Pow>));
  t->push_back(
      binary("maximum", {"elementwise_max", "pd_op.maximum"}, prepare_binary<BinKind::Max>));
  t->push_back(
      binary("minimum", {"elementwise_min", "pd_op.minimum"}, prepare_binary<BinKind::Min>));
  t->push_back(binary("floor_divide", {"elementwise_floordiv", "pd_op.floor_divide"},
                      prepare_binary<BinKind::FloorDiv>));
  t->push_back(
      binary("remainder", {"elementwise_mod", "pd_op.remainder"}, prepare_binary<BinKind::Mod>));
}

}  // namespace pif
