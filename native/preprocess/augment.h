// The training-time augmentation of PP-ShiTuV2_rec (../shared/spec/training-packaging.md A4,
// PaddleClas's train pipeline after its first resize): RandFlipImage (horizontal, p 0.5), Pad
// (zeros), RandCropImageV2 back to the input size, RandomRotation (p, uniform angle, bilinear
// about the centre, zeros outside), then a resize back to the input size. Every random draw
// comes from one seed per view, so a view does not depend on threads or batch order.
#pragma once

#include <cstdint>
#include <vector>

namespace pif {

struct TrainAugment {
  bool flip = true;
  int pad = 10;
  double rotate_prob = 0.5;
  double max_degrees = 90;
};

// The random choices of one view.
struct AugmentDraw {
  bool flip = false;
  int top = 0, left = 0;  // the crop's corner in the padded image
  bool rotate = false;
  double degrees = 0;
};

// The draws for `seed` on a w x h image (a splitmix64 stream). The crop corner is uniform in
// [0, 2 * pad + 1] as PaddleClas's randint draws it, so the crop may come out one row or
// column short (the final resize restores the size).
AugmentDraw draw_augment(uint64_t seed, const TrainAugment& a);

// One view of `src` (w x h, cn interleaved 8-bit channels) into `dst` (resized to w * h * cn).
void train_view(const uint8_t* src, int w, int h, int cn, const AugmentDraw& d,
                const TrainAugment& a, std::vector<uint8_t>* dst);

// Rotation by `degrees` (counter-clockwise as displayed) about the image centre
// ((w - 1) / 2, (h - 1) / 2), bilinear, zero outside, rounded to nearest: dst(x, y) =
// src(c + R(x - c)). dst holds w * h * cn bytes.
void rotate_bilinear_u8(const uint8_t* src, int w, int h, int cn, double degrees, uint8_t* dst);

}  // namespace pif
