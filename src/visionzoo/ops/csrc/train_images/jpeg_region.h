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

// Rows [y, y + h) and columns [x, x + w) of the decoded RGB image into out (h x w x 3, packed).
int DecodeJpegRegion(const uint8_t *data, size_t size, int x, int y, int w, int h, uint8_t *out, char *err,
                     size_t errlen);

}  // namespace vzimg
