#include "preprocess/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "preprocess/resize_linear.h"

namespace pif {

namespace {

// splitmix64: tiny, well mixed, and the same on every platform (std distributions are not).
struct SplitMix {
  uint64_t x;
  uint64_t next() {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

}  // namespace

AugmentDraw draw_augment(uint64_t seed, const TrainAugment& a) {
  SplitMix r{seed};
  AugmentDraw d;
  d.flip = a.flip && r.unit() < 0.5;
  d.top = r.below(2 * a.pad + 2);
  d.left = r.below(2 * a.pad + 2);
  d.rotate = r.unit() < a.rotate_prob;
  d.degrees = (2 * r.unit() - 1) * a.max_degrees;
  if (!d.rotate) d.degrees = 0;
  return d;
}

void rotate_bilinear_u8(const uint8_t* src, int w, int h, int cn, double degrees, uint8_t* dst) {
  const double rad = degrees * M_PI / 180.0;
  const double c = std::cos(rad), s = std::sin(rad);
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  const size_t row = static_cast<size_t>(w) * cn;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      // Inverse map: the source point that lands on (x, y) after a counter-clockwise turn
      // (with y growing downwards).
      const double xs = c * (x - cx) - s * (y - cy) + cx;
      const double ys = s * (x - cx) + c * (y - cy) + cy;
      const double fx = std::floor(xs), fy = std::floor(ys);
      const int x0 = static_cast<int>(fx), y0 = static_cast<int>(fy);
      const double ax = xs - fx, ay = ys - fy;
      const double wt[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      const int px[4] = {x0, x0 + 1, x0, x0 + 1}, py[4] = {y0, y0, y0 + 1, y0 + 1};
      uint8_t* o = dst + y * row + static_cast<size_t>(x) * cn;
      for (int k = 0; k < cn; ++k) {
        double acc = 0;
        for (int q = 0; q < 4; ++q)
          if (px[q] >= 0 && px[q] < w && py[q] >= 0 && py[q] < h)
            acc += wt[q] * src[py[q] * row + static_cast<size_t>(px[q]) * cn + k];
        o[k] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, std::floor(acc + 0.5))));
      }
    }
  }
}

void train_view(const uint8_t* src, int w, int h, int cn, const AugmentDraw& d,
                const TrainAugment& a, std::vector<uint8_t>* dst) {
  const size_t row = static_cast<size_t>(w) * cn;
  // Flip, then pad: one padded buffer (zeros around the possibly mirrored image).
  const int pw = w + 2 * a.pad, ph = h + 2 * a.pad;
  const size_t prow = static_cast<size_t>(pw) * cn;
  std::vector<uint8_t> padded(prow * ph, 0);
  for (int y = 0; y < h; ++y) {
    uint8_t* o = padded.data() + (y + a.pad) * prow + static_cast<size_t>(a.pad) * cn;
    const uint8_t* in = src + y * row;
    if (!d.flip) {
      std::memcpy(o, in, row);
    } else {
      for (int x = 0; x < w; ++x)
        std::memcpy(o + static_cast<size_t>(x) * cn, in + static_cast<size_t>(w - 1 - x) * cn,
                    static_cast<size_t>(cn));
    }
  }
  // The crop: w x h from (left, top), cut short where it runs past the padded image.
  const int top = std::min(d.top, ph - 1), left = std::min(d.left, pw - 1);
  const int cw = std::min(w, pw - left), ch = std::min(h, ph - top);
  std::vector<uint8_t> crop(static_cast<size_t>(cw) * cn * ch);
  for (int y = 0; y < ch; ++y)
    std::memcpy(crop.data() + static_cast<size_t>(y) * cw * cn,
                padded.data() + (top + y) * prow + static_cast<size_t>(left) * cn,
                static_cast<size_t>(cw) * cn);
  if (d.rotate) {
    std::vector<uint8_t> turned(crop.size());
    rotate_bilinear_u8(crop.data(), cw, ch, cn, d.degrees, turned.data());
    crop.swap(turned);
  }
  dst->resize(row * h);
  if (cw == w && ch == h)
    std::memcpy(dst->data(), crop.data(), crop.size());
  else
    resize_linear_u8(crop.data(), cw, ch, cn, dst->data(), w, h);
}

}  // namespace pif
