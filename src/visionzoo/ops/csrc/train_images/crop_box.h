// RandomResizedCrop's box, as MindSpore 2.10's RandomCropAndResizeOp::GetCropBox draws it.
#pragma once

#include "params.h"

namespace vzimg {

// The crop box of an h x w image from the draws at kDrawBox (kMaxAttempts of them).
Box CropBox(int h, int w, const double *draws, const TrainParams &p);

}  // namespace vzimg
