// What one image-feature batch needs around the model: decoded 8-bit images into the model's
// planar float input (each image resized and normalised into its slot), and the model's output
// rows scaled to unit length.
#pragma once

#include <cstdint>
#include <vector>

namespace pif {

// One decoded image (interleaved 8-bit HWC) and the size the model wants it at. `pixels`
// points into `owned`, or into memory its creator keeps alive until the work is done.
struct BatchImage {
  const uint8_t* pixels = nullptr;
  std::vector<uint8_t> owned;
  int width = 0, height = 0, channels = 0;
  int target_width = 0, target_height = 0;
  // A training view (preprocess/augment.h) of the resized image, drawn with this seed.
  bool augment = false;
  uint64_t augment_seed = 0;
};

// The normalisation after the resize: (x * scale - mean[c]) / std[c], one mean and std per
// channel.
struct Normalization {
  float scale = 1.f / 255.f;
  std::vector<float> mean, std;
};

// Resizes (resize_linear_u8), makes the training view when `img.augment`, and normalises
// (normalize_to_chw) `img` into `chw`, which holds channels * target_height * target_width floats;
// `scratch` is reused between calls.
void preprocess_into(const BatchImage& img, const Normalization& norm,
                     std::vector<uint8_t>* scratch, float* chw);

// Scales each of `rows` rows of `dim` floats to unit L2 length with lib/image-feature.ts
// normalizeRows' arithmetic (the sum of squares and the scale in double); an all-zero row stays
// zero.
void unit_rows(float* data, int64_t rows, int64_t dim);

}  // namespace pif
