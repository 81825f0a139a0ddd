// The training views (native/preprocess/augment.h): the rotation against exact quarter turns
// and the identity, the crop and pad against direct indexing, the flip, and the draws: seeded,
// in range, and with the probabilities PaddleClas uses.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "preprocess/augment.h"
#include "tests/harness.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

std::vector<uint8_t> noise(int w, int h, int cn, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(w) * h * cn);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng() & 0xff);
  return v;
}

uint8_t at(const std::vector<uint8_t>& v, int w, int cn, int x, int y, int c) {
  return v[(static_cast<size_t>(y) * w + x) * cn + c];
}

}  // namespace

PIF_TEST(augment, rotation_quarter_turns_and_identity) {
  for (int n : {1, 2, 7, 8, 224}) {
    const int cn = 3;
    const std::vector<uint8_t> src = noise(n, n, cn, static_cast<uint64_t>(n));
    std::vector<uint8_t> dst(src.size());
    rotate_bilinear_u8(src.data(), n, n, cn, 0.0, dst.data());
    if (dst != src) return FAILF("0 degrees is not the identity at n=" + std::to_string(n));
    // Counter-clockwise as displayed: the top row comes from the right column.
    rotate_bilinear_u8(src.data(), n, n, cn, 90.0, dst.data());
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x)
        for (int c = 0; c < cn; ++c)
          if (at(dst, n, cn, x, y, c) != at(src, n, cn, n - 1 - y, x, c))
            return FAILF("90 degrees differs at n=" + std::to_string(n));
    rotate_bilinear_u8(src.data(), n, n, cn, -90.0, dst.data());
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x)
        if (at(dst, n, cn, x, y, 0) != at(src, n, cn, y, n - 1 - x, 0))
          return FAILF("-90 degrees differs at n=" + std::to_string(n));
  }
}

PIF_TEST(augment, rotation_bilinear_against_formula) {
  const int w = 9, h = 6, cn = 1;
  const std::vector<uint8_t> src = noise(w, h, cn, 5);
  std::vector<uint8_t> dst(src.size());
  const double deg = 30;
  rotate_bilinear_u8(src.data(), w, h, cn, deg, dst.data());
  const double r = deg * M_PI / 180, c = std::cos(r), s = std::sin(r);
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  auto px = [&](int x, int y) -> double {
    return x < 0 || y < 0 || x >= w || y >= h ? 0.0 : at(src, w, cn, x, y, 0);
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double xs = c * (x - cx) - s * (y - cy) + cx, ys = s * (x - cx) + c * (y - cy) + cy;
      const int x0 = static_cast<int>(std::floor(xs)), y0 = static_cast<int>(std::floor(ys));
      const double ax = xs - x0, ay = ys - y0;
      const double v = (1 - ay) * ((1 - ax) * px(x0, y0) + ax * px(x0 + 1, y0)) +
                       ay * ((1 - ax) * px(x0, y0 + 1) + ax * px(x0 + 1, y0 + 1));
      if (std::fabs(at(dst, w, cn, x, y, 0) - v) > 0.5 + 1e-9)
        return FAILF("bilinear value at " + std::to_string(x) + "," + std::to_string(y));
    }
}

PIF_TEST(augment, flip_pad_crop_by_index) {
  const int w = 12, h = 10, cn = 3;
  TrainAugment a;
  a.pad = 3;
  const std::vector<uint8_t> src = noise(w, h, cn, 9);
  for (bool flip : {false, true}) {
    for (int top : {0, 2, 6}) {
      for (int left : {0, 5, 6}) {
        AugmentDraw d;
        d.flip = flip, d.top = top, d.left = left;
        std::vector<uint8_t> dst;
        train_view(src.data(), w, h, cn, d, a, &dst);
        if (dst.size() != src.size()) return FAILF("size");
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            // In the padded image, (x + left, y + top); in the source, minus the pad.
            const int sx = x + left - a.pad, sy = y + top - a.pad;
            const bool in = sx >= 0 && sy >= 0 && sx < w && sy < h;
            for (int c = 0; c < cn; ++c) {
              const uint8_t want = in ? at(src, w, cn, flip ? w - 1 - sx : sx, sy, c) : 0;
              if (at(dst, w, cn, x, y, c) != want)
                return FAILF("flip " + std::to_string(flip) + " crop " + std::to_string(top) + "," +
                             std::to_string(left) + " differs at " + std::to_string(x) + "," +
                             std::to_string(y));
            }
          }
      }
    }
  }
  // A corner at 2 * pad + 1 cuts the crop one short; the view is resized back to w x h.
  AugmentDraw d;
  d.top = d.left = 2 * a.pad + 1;
  std::vector<uint8_t> dst;
  train_view(src.data(), w, h, cn, d, a, &dst);
  if (dst.size() != src.size()) FAILF("a short crop was not resized back");
}

PIF_TEST(augment, draws_are_seeded_and_in_range) {
  const TrainAugment a;
  int flips = 0, rotations = 0, top_max = 0;
  double deg_max = 0;
  for (uint64_t s = 0; s < 4000; ++s) {
    const AugmentDraw d = draw_augment(s, a), again = draw_augment(s, a);
    if (d.flip != again.flip || d.top != again.top || d.degrees != again.degrees)
      return FAILF("the same seed drew differently");
    if (d.top < 0 || d.top > 2 * a.pad + 1 || d.left < 0 || d.left > 2 * a.pad + 1)
      return FAILF("crop corner out of range");
    if (std::fabs(d.degrees) > a.max_degrees || (!d.rotate && d.degrees != 0))
      return FAILF("angle out of range");
    flips += d.flip, rotations += d.rotate;
    top_max = std::max(top_max, d.top);
    deg_max = std::max(deg_max, std::fabs(d.degrees));
  }
  // p = 0.5 each: 4000 draws stay within 5 standard deviations (about 160) of 2000.
  if (std::abs(flips - 2000) > 160 || std::abs(rotations - 2000) > 160)
    FAILF("flip/rotation rates " + std::to_string(flips) + ", " + std::to_string(rotations));
  if (top_max != 2 * a.pad + 1 || deg_max < 85) FAILF("the draws do not cover their range");
  TrainAugment none;
  none.flip = false, none.rotate_prob = 0;
  for (uint64_t s = 0; s < 100; ++s)
    if (draw_augment(s, none).flip || draw_augment(s, none).rotate) return FAILF("p = 0 drew");
}

}  // namespace pif::test
