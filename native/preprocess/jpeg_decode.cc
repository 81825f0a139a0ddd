#include "preprocess/jpeg_decode.h"

#ifdef PIF_HAVE_LIBJPEG
#include <csetjmp>
#include <cstdio>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#endif

namespace pif {

#ifndef PIF_HAVE_LIBJPEG

bool jpeg_decode_available() { return false; }

std::string decode_jpeg_rgb(const uint8_t*, size_t, int, int, std::vector<uint8_t>*) {
  return "built without libjpeg";
}

#else

namespace {

// libjpeg reports errors through error_exit, which must not return: we jump back to
// decode_jpeg_rgb's setjmp. Only C frames (libjpeg's) lie between, so no destructor is
// skipped. Warnings (emit_message level -1) are kept: any warning fails the decode.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool warned;
};

void on_error(j_common_ptr cinfo) {
  ErrorManager* em = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, em->message);
  std::longjmp(em->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  ErrorManager* em = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0 && !em->warned) {
    em->warned = true;
    (*cinfo->err->format_message)(cinfo, em->message);
  }
}

// The part that may jump: no object with a destructor is created in here.
bool decode(jpeg_decompress_struct* cinfo, ErrorManager* em, const uint8_t* data, size_t size,
            int width, int height, std::vector<uint8_t>* rgb, std::string* why) {
  if (setjmp(em->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
    *why = "no image in the JPEG data";
    return false;
  }
  if (em->warned) return false;
  if (cinfo->num_components != 1 && cinfo->num_components != 3) {
    *why = "not a 1- or 3-component JPEG";
    return false;
  }
  if (static_cast<int>(cinfo->image_width) != width ||
      static_cast<int>(cinfo->image_height) != height) {
    *why = "the JPEG is " + std::to_string(cinfo->image_width) + "x" +
           std::to_string(cinfo->image_height) + ", not " + std::to_string(width) + "x" +
           std::to_string(height);
    return false;
  }
  // libjpeg's defaults (JDCT_ISLOW, fancy upsampling) are what sharp and OpenCV decode with.
  cinfo->out_color_space = JCS_RGB;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_components != 3) {
    *why = "did not decode to 3 channels";
    return false;
  }
  const size_t stride = static_cast<size_t>(width) * 3;
  rgb->resize(stride * static_cast<size_t>(height));
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = rgb->data() + stride * cinfo->output_scanline;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
      *why = "the JPEG data ended early";
      return false;
    }
  }
  jpeg_finish_decompress(cinfo);
  return !em->warned;
}

}  // namespace

bool jpeg_decode_available() { return true; }

std::string decode_jpeg_rgb(const uint8_t* data, size_t size, int width, int height,
                            std::vector<uint8_t>* rgb) {
  if (data == nullptr || size < 4) return "not JPEG data";
  if (width <= 0 || height <= 0) return "bad size";
  jpeg_decompress_struct cinfo;
  ErrorManager em;
  cinfo.err = jpeg_std_error(&em.pub);
  em.pub.error_exit = on_error;
  em.pub.emit_message = on_message;
  em.message[0] = '\0';
  em.warned = false;
  std::string why;
  bool ok = false;
  try {
    ok = decode(&cinfo, &em, data, size, width, height, rgb, &why);
  } catch (...) {  // std::bad_alloc from the output buffer
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  jpeg_destroy_decompress(&cinfo);
  if (ok) return "";
  if (why.empty()) why = em.message[0] != '\0' ? em.message : "libjpeg failed";
  return why;
}

#endif

}  // namespace pif
