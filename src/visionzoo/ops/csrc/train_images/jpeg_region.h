// Decoding part of a JPEG with the system's libjpeg-turbo (its SIMD kernels): only the rows down to the
// region's last and, within them, the iMCU columns around it. Pixels equal a whole-image decode with
// the settings of MindSpore's Decode and Pillow (accurate integer IDCT, fancy upsampling, RGB out).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vzimg {

enum Status : int { kOk = 0, kUnsupported = 1, kCorrupt = 2 };

// Width and height from the header. kUnsupported: not a JPEG, or a colour space that does not decode
// to RGB here (CMYK, YCCK): the caller decodes it another way. kCorrupt: message in err.
int JpegSize(const uint8_t *data, size_t size, int *height, int *width, char *err, size_t errlen);

// Rows [y, y + h) of the decoded RGB image, at least columns [x, x + w), into out (room for h rows of
// the whole image width: h x width x 3 bytes). The rows hold the iMCU columns around the region and
// are *stride bytes apart; pixel (x, y) is at out + *offset. Nothing is copied after decoding.
int DecodeJpegRegion(const uint8_t *data, size_t size, int x, int y, int w, int h, uint8_t *out, size_t *offset,
                     size_t *stride, char *err, size_t errlen);

}  // namespace vzimg
