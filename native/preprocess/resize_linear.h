// Bilinear resize of 8-bit interleaved images with OpenCV 4.x's exact
// INTER_LINEAR arithmetic (cv::resize without IPP: resizeGeneric_ with 11-bit
// fixed-point coefficients, HResizeLinear in int, and the vertical pass with
// the rounding of its vector kernel VResizeLinearVec_32s8u), so that
// PaddleX's cv2.resize preprocessing is reproduced value for value. Also the
// normalisation that follows it (x * scale - mean) / std into planar CHW.
#pragma once

#include <cstdint>

namespace pif {

// src: sh rows of sw * cn bytes (row-major, interleaved channels); dst: dh
// rows of dw * cn bytes. 1 <= cn <= 4; all sizes positive.
void resize_linear_u8(const uint8_t* src, int sw, int sh, int cn, uint8_t* dst, int dw, int dh);

// hwc (h * w * cn bytes) -> chw float: (v * scale - mean[c]) / std[c], each
// step in float32 as NumPy does it.
void normalize_to_chw(const uint8_t* hwc, int w, int h, int cn, float scale, const float* mean,
                      const float* std, float* chw);

}  // namespace pif
