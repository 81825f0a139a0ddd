#include "preprocess/batch.h"

#include <cmath>
#include <cstddef>

#include "preprocess/augment.h"
#include "preprocess/resize_linear.h"

namespace pif {

void preprocess_into(const BatchImage& img, const Normalization& norm,
                     std::vector<uint8_t>* scratch, float* chw) {
  scratch->resize(static_cast<size_t>(img.target_width) * static_cast<size_t>(img.target_height) *
                  static_cast<size_t>(img.channels));
  resize_linear_u8(img.pixels, img.width, img.height, img.channels, scratch->data(),
                   img.target_width, img.target_height);
  if (img.augment) {
    const TrainAugment a;
    std::vector<uint8_t> view;
    train_view(scratch->data(), img.target_width, img.target_height, img.channels,
               draw_augment(img.augment_seed, a), a, &view);
    scratch->swap(view);
  }
  normalize_to_chw(scratch->data(), img.target_width, img.target_height, img.channels, norm.scale,
                   norm.mean.data(), norm.std.data(), chw);
}

// The square and the sum stay two roundings (no fused multiply-add), as in JavaScript.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
__attribute__((optimize("fp-contract=off")))
#endif
void unit_rows(float* data, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = data + r * dim;
    double s = 0;
    for (int64_t i = 0; i < dim; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    if (s == 0) continue;
    const double inv = 1 / std::sqrt(s);
    for (int64_t i = 0; i < dim; ++i) x[i] = static_cast<float>(static_cast<double>(x[i]) * inv);
  }
}

}  // namespace pif
