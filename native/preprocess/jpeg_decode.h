// JPEG decoding for the image-feature batch, with libjpeg-turbo: a JPEG file's bytes to
// interleaved 8-bit RGB, the same pixels sharp (libvips over libjpeg-turbo's decoder) and
// cv2.imread give: the accurate integer IDCT and fancy upsampling, libjpeg's defaults. Grey
// images come out with the grey value in all three channels, as cv2.imread(IMREAD_COLOR).
//
// Built only with libjpeg (PIF_HAVE_LIBJPEG, set by CMakeLists.txt and binding.gyp when the
// library is there); without it jpeg_decode_available() is false and every decode fails, and
// lib/ decodes with sharp instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pif {

bool jpeg_decode_available();

// Decodes `size` bytes at `data` into `rgb` (width * height * 3 bytes, rows top down). The
// image must be `width` x `height` with 1 or 3 components of 8 bits (what lib/jpeg-header.ts
// read from the file's frame header). Returns "" on success, otherwise why not: a libjpeg
// error, or any warning (corrupt or truncated data: the caller then decodes it the slow way,
// which decides what such a file gives), or a size that is not the one expected. Never
// throws for bad data; `rgb` is unspecified after a failure.
std::string decode_jpeg_rgb(const uint8_t* data, size_t size, int width, int height,
                            std::vector<uint8_t>* rgb);

}  // namespace pif
