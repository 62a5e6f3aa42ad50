// The batch-split formulation: c is built for one of `parts` equal slices of the batch, and each OpenMP
// thread runs whole slices on its own with single-threaded primitives. Forward and backward data slice
// their activations (contiguous in NCHW) and share the weights, reordered once; backward weights slices
// both inputs and adds the threads' partial gradients. No synchronisation inside a primitive, but a
// reduction for the weights and less cache sharing: faster on some layers, slower on others.
#pragma once

#include "onednn_conv.h"

namespace vzconv {

// Runs c (built for one slice, single-threaded) over the whole batch: in0, in1 -> out in plain layouts.
bool RunSplit(const Conv &c, int direction, int parts, void *in0, void *in1, void *out, const void *bias);
// Grows the scratch every thread of a split run uses.
void TouchSplit(const Conv &c, int direction, int parts);
// At most this many threads per split run (0: one per slice); returns the previous limit. The self-check
// sets 1 to cover a thread running several slices, as happens when called from inside a parallel region.
int SetSplitThreads(int limit);

}  // namespace vzconv
