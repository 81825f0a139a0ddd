#include "kernels/common/helpers.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace pif {

const RTensor& need_input(const RunCtx& c, size_t slot, const char* name) {
  const RTensor* t = c.input(slot);
  if (!t) op_fail(std::string("missing input ") + name);
  return *t;
}

std::vector<int64_t> read_ints(const RTensor& t) {
  int64_t n = t.numel();
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (t.dtype == DType::Int64) {
    if (n) std::memcpy(v.data(), t.data, static_cast<size_t>(n) * 8);
  } else if (t.dtype == DType::Int32) {
    const int32_t* p = t.ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  } else {
    op_fail(std::string("expected an int32/int64 tensor, got ") + dtype_name(t.dtype));
  }
  return v;
}

// SAME / VALID padding update (Paddle's UpdatePaddingAndDilation).
void conv_resolved_padding(const ConvState& s, int64_t H, int64_t W, int64_t KH, int64_t KW,
                           int64_t pads[4], int64_t* dh, int64_t* dw) {
  for (int i = 0; i < 4; ++i) pads[i] = s.pads[i];
  *dh = s.dh;
  *dw = s.dw;
  if (s.algo == PadAlgo::Valid) {
    pads[0] = pads[1] = pads[2] = pads[3] = 0;
  } else if (s.algo == PadAlgo::Same) {
    auto same = [](int64_t in, int64_t st, int64_t k, int64_t* p0, int64_t* p1) {
      int64_t out = (in + st - 1) / st;
      int64_t sum = std::max<int64_t>((out - 1) * st + k - in, 0);
      *p0 = sum / 2;
      *p1 = sum - *p0;
    };
    same(H, s.sh, KH, &pads[0], &pads[1]);
    same(W, s.sw, KW, &pads[2], &pads[3]);
    *dh = *dw = 1;
  }
}

RTensor rtensor_of(const Tensor& t) {
  RTensor r;
  r.dtype = t.dtype;
  r.dims = t.dims;
  r.nbytes = t.nbytes;
  r.owner = std::shared_ptr<void>(t.storage, t.storage ? t.storage->data() : nullptr);
  r.data = const_cast<uint8_t*>(t.data());
  return r;
}

}  // namespace pif
