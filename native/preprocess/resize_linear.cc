#include "preprocess/resize_linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pif {
namespace {

constexpr int kCoefBits = 11;  // INTER_RESIZE_COEF_BITS
constexpr int kCoefScale = 1 << kCoefBits;

// cv::saturate_cast<short>(float): round half to even (cvRound), saturate.
int16_t to_short(float v) {
  float r = std::nearbyint(v);
  if (r > 32767.f) return 32767;
  if (r < -32768.f) return -32768;
  return static_cast<int16_t>(r);
}

// The 16-bit lane operations of the vector pass.
inline int16_t pack_s16(int32_t v) {  // v_pack: signed saturation
  return static_cast<int16_t>(std::min(32767, std::max(-32768, v)));
}
inline int32_t mul_hi(int16_t a, int16_t b) {  // v_mul_hi: (a * b) >> 16
  return (static_cast<int32_t>(a) * static_cast<int32_t>(b)) >> 16;
}
inline uint8_t rshr_pack_u2(int32_t v16) {  // v_rshr_pack_u<2> on a 16-bit lane
  int16_t s = pack_s16(v16);
  int32_t r = (static_cast<int32_t>(s) + 2) >> 2;
  return static_cast<uint8_t>(std::min(255, std::max(0, r)));
}

}  // namespace

void resize_linear_u8(const uint8_t* src, int sw, int sh, int cn, uint8_t* dst, int dw, int dh) {
  const double scale_x = 1.0 / (static_cast<double>(dw) / sw);
  const double scale_y = 1.0 / (static_cast<double>(dh) / sh);
  const int width = dw * cn;

  // Horizontal taps (resize(): xofs / ialpha, xmax).
  std::vector<int> xofs(static_cast<size_t>(width));
  std::vector<int16_t> alpha(static_cast<size_t>(width) * 2);
  int xmax = dw;
  for (int dx = 0; dx < dw; ++dx) {
    float fx = static_cast<float>((dx + 0.5) * scale_x - 0.5);
    int sx = static_cast<int>(std::floor(fx));
    fx -= static_cast<float>(sx);
    if (sx < 0) fx = 0.f, sx = 0;
    if (sx + 1 >= sw) {
      xmax = std::min(xmax, dx);
      if (sx >= sw - 1) fx = 0.f, sx = sw - 1;
    }
    int16_t a0 = to_short((1.f - fx) * kCoefScale), a1 = to_short(fx * kCoefScale);
    for (int k = 0; k < cn; ++k) {
      xofs[static_cast<size_t>(dx * cn + k)] = sx * cn + k;
      alpha[static_cast<size_t>(dx * cn + k) * 2] = a0;
      alpha[static_cast<size_t>(dx * cn + k) * 2 + 1] = a1;
    }
  }
  xmax *= cn;

  // Horizontal pass of one source row into ints (HResizeLinear<uchar, int, short>).
  auto hresize = [&](int sy, int32_t* out) {
    const uint8_t* s = src + static_cast<size_t>(sy) * static_cast<size_t>(sw) * cn;
    int dx = 0;
    for (; dx < xmax; ++dx) {
      int sx = xofs[static_cast<size_t>(dx)];
      out[dx] = s[sx] * alpha[static_cast<size_t>(dx) * 2] +
                s[sx + cn] * alpha[static_cast<size_t>(dx) * 2 + 1];
    }
    for (; dx < width; ++dx) out[dx] = s[xofs[static_cast<size_t>(dx)]] * kCoefScale;
  };

  std::vector<int32_t> row0(static_cast<size_t>(width)), row1(static_cast<size_t>(width));
  int have0 = -1, have1 = -1;
  for (int dy = 0; dy < dh; ++dy) {
    float fy = static_cast<float>((dy + 0.5) * scale_y - 0.5);
    int sy = static_cast<int>(std::floor(fy));
    fy -= static_cast<float>(sy);
    int16_t b0 = to_short((1.f - fy) * kCoefScale), b1 = to_short(fy * kCoefScale);
    // Source rows clipped to the image (resizeGeneric_ invoker).
    int r0 = std::min(std::max(sy, 0), sh - 1), r1 = std::min(std::max(sy + 1, 0), sh - 1);
    if (have0 != r0) {
      if (have1 == r0) {
        std::swap(row0, row1);
        std::swap(have0, have1);
      } else {
        hresize(r0, row0.data());
        have0 = r0;
      }
    }
    if (have1 != r1) {
      hresize(r1, row1.data());
      have1 = r1;
    }
    const int32_t* S0 = row0.data();
    const int32_t* S1 = row1.data();
    uint8_t* d = dst + static_cast<size_t>(dy) * static_cast<size_t>(width);
    // The vector formula of VResizeLinearVec_32s8u for every element:
    // ((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16), then (v + 2) >> 2.
    // Measured against cv2.resize (OpenCV 4.6, Debian): it matches on every
    // element, the row tail included, where the scalar FixedPtCast formula
    // ((S0 * b0 + S1 * b1 + 2^21) >> 22) differs in about 1 % of values.
    for (int x = 0; x < width; ++x) {
      int32_t v = mul_hi(pack_s16(S0[x] >> 4), b0) + mul_hi(pack_s16(S1[x] >> 4), b1);
      d[x] = rshr_pack_u2(v);
    }
  }
}

void normalize_to_chw(const uint8_t* hwc, int w, int h, int cn, float scale, const float* mean,
                      const float* std, float* chw) {
  // Every value a byte can give, per channel: the same float32 steps, computed once.
  float table[4][256];
  for (int c = 0; c < cn; ++c)
    for (int v = 0; v < 256; ++v) table[c][v] = (static_cast<float>(v) * scale - mean[c]) / std[c];
  const size_t plane = static_cast<size_t>(w) * static_cast<size_t>(h);
  for (int c = 0; c < cn; ++c) {
    float* out = chw + plane * static_cast<size_t>(c);
    const float* t = table[c];
    for (size_t i = 0; i < plane; ++i)
      out[i] = t[hwc[i * static_cast<size_t>(cn) + static_cast<size_t>(c)]];
  }
}

}  // namespace pif
