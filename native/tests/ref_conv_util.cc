// The ref_conv suite's geometry and layout helpers (ref_conv.h).
#include "tests/ref_conv.h"

namespace pif::test {

std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t> random_window(
    Rng& r, int64_t hw, int64_t dil) {
  int64_t H = r.i(1, hw);
  int64_t W = r.i(1, hw);
  int64_t KH = r.i(1, 4);
  int64_t KW = r.i(1, 4);
  int64_t sh = r.i(1, 3);
  int64_t sw = r.i(1, 3);
  int64_t dh = r.i(1, dil);
  return {H, W, KH, KW, sh, sw, dh, r.i(1, dil)};
}

std::vector<int64_t> random_pads(Rng& r, int64_t hi) {
  if (r.b()) return {r.i(0, hi), r.i(0, hi)};
  return {r.i(0, hi), r.i(0, hi), r.i(0, hi), r.i(0, hi)};
}

std::string random_algo(Rng& r, double p) {
  return r.b(p) ? "EXPLICIT" : (r.b() ? "SAME" : "VALID");
}

void check_image(const std::string& op, const std::string& desc, const NamedTensor& got,
                 const std::vector<int64_t>& nchw, const std::vector<double>& want, bool nhwc) {
  int64_t N = nchw[0], C = nchw[1], H = nchw[2], W = nchw[3];
  if (nhwc)
    check_f32(op, desc, got, {N, H, W, C}, nchw_to_nhwc(want, N, C, H, W));
  else
    check_f32(op, desc, got, nchw, want);
}

}  // namespace pif::test
