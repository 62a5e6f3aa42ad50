// libjpeg reports errors through error_exit, which must not return: it longjmps back to the call that
// set it up. No object with a destructor lives between that setjmp and the library calls; buffers come
// from libjpeg's own pool and are released by jpeg_destroy_decompress.
#include "jpeg_region.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

extern "C" {
#include <jpeglib.h>
}

namespace vzimg {
namespace {

// Columns and rows decoded beyond the region on each side, so that the chroma upsampling of every
// pixel inside it sees the same neighbours as in a whole-image decode (one iMCU is at most 16 pixels).
constexpr int kMargin = 16;

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void ExitOnError(j_common_ptr cinfo) {
  auto *manager = reinterpret_cast<ErrorManager *>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, manager->message);
  longjmp(manager->jump, 1);
}

// Warnings (a missing end marker, extraneous bytes) are not errors, as in MindSpore's and Pillow's
// decoders; they are not printed either.
void IgnoreMessage(j_common_ptr, int) {}

void Copy(const char *message, char *err, size_t errlen) {
  if (errlen > 0) std::snprintf(err, errlen, "%s", message);
}

bool DecodesToRgb(J_COLOR_SPACE space) { return space == JCS_YCbCr || space == JCS_GRAYSCALE || space == JCS_RGB; }

bool IsJpeg(const uint8_t *data, size_t size) { return size >= 3 && data[0] == 0xFF && data[1] == 0xD8; }

void Setup(jpeg_decompress_struct *cinfo, ErrorManager *manager) {
  cinfo->err = jpeg_std_error(&manager->pub);
  manager->pub.error_exit = ExitOnError;
  manager->pub.emit_message = IgnoreMessage;
  jpeg_create_decompress(cinfo);
}

// Reads the header, then returns body(&cinfo) for a JPEG that decodes to RGB (kUnsupported otherwise).
// A libjpeg error anywhere, body included, returns kCorrupt with its message in err: the longjmp lands
// here, in this frame, and body keeps no object with a destructor.
template <class Body>
int WithHeader(const uint8_t *data, size_t size, char *err, size_t errlen, Body body) {
  if (!IsJpeg(data, size)) return kUnsupported;
  jpeg_decompress_struct cinfo;
  ErrorManager manager;
  Setup(&cinfo, &manager);
  if (setjmp(manager.jump)) {
    Copy(manager.message, err, errlen);
    jpeg_destroy_decompress(&cinfo);
    return kCorrupt;
  }
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const int status = DecodesToRgb(cinfo.jpeg_color_space) ? body(&cinfo) : kUnsupported;
  jpeg_destroy_decompress(&cinfo);
  return status;
}

}  // namespace

int JpegSize(const uint8_t *data, size_t size, int *height, int *width, char *err, size_t errlen) {
  return WithHeader(data, size, err, errlen, [&](jpeg_decompress_struct *cinfo) {
    *height = static_cast<int>(cinfo->image_height);
    *width = static_cast<int>(cinfo->image_width);
    return static_cast<int>(kOk);
  });
}

int DecodeJpegRegion(const uint8_t *data, size_t size, int x, int y, int w, int h, uint8_t *out, size_t *offset,
                     size_t *stride, char *err, size_t errlen) {
  return WithHeader(data, size, err, errlen, [&](jpeg_decompress_struct *cinfo) {
    const int width = static_cast<int>(cinfo->image_width), height = static_cast<int>(cinfo->image_height);
    if (x < 0 || y < 0 || w < 1 || h < 1 || x + w > width || y + h > height) {
      Copy("crop box outside the image", err, errlen);
      return static_cast<int>(kCorrupt);
    }
    cinfo->out_color_space = JCS_RGB;
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    jpeg_start_decompress(cinfo);
    JDIMENSION left = static_cast<JDIMENSION>(std::max(0, x - kMargin));
    JDIMENSION cols = static_cast<JDIMENSION>(std::min(width, x + w + kMargin)) - left;
    if (cols < static_cast<JDIMENSION>(width)) jpeg_crop_scanline(cinfo, &left, &cols);  // widens to iMCUs
    const int top = std::max(0, y - kMargin);
    if (top > 0) jpeg_skip_scanlines(cinfo, static_cast<JDIMENSION>(top));
    JSAMPARRAY skipped = (*cinfo->mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(cinfo), JPOOL_IMAGE, cols * 3, 1);
    *stride = static_cast<size_t>(cols) * 3;
    *offset = static_cast<size_t>(x - static_cast<int>(left)) * 3;
    while (static_cast<int>(cinfo->output_scanline) < y + h) {
      const int row = static_cast<int>(cinfo->output_scanline);
      JSAMPROW target = row >= y ? out + static_cast<size_t>(row - y) * *stride : skipped[0];
      jpeg_read_scanlines(cinfo, &target, 1);
    }
    jpeg_abort_decompress(cinfo);
    return static_cast<int>(kOk);
  });
}

}  // namespace vzimg
