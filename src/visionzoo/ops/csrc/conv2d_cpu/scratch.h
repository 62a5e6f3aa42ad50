// Scratch memory: growable 64-byte-aligned buffers in sets, one set per thread *running* a convolution.
//
// MindSpore launches kernels from several actor threads, and thread-local sets each grown to the largest
// layer multiplied the scratch memory by their number. A call leases a set from a pool for its duration
// (and so does each OpenMP worker of a parallel formulation), so the number of sets is the peak
// concurrency. Plain C++ (no oneDNN).
#pragma once

#include <cstddef>

namespace vzconv {

// The buffers of a set, by use.
enum class Slot : int {
  kInput0 = 0,      // the operands in a primitive's layout: input 0, input 1, output (in that order)
  kInput1 = 1,
  kOutput = 2,
  kSharedWeights,   // the weights shared by the threads of a batch-split run
  kPartial,         // a thread's partial weight gradient in a batch-split run
  kExtra,           // a further slice's gradient when a thread runs several slices
  kScratchpad,      // oneDNN's scratchpad
  kColumns,         // the batched-GEMM weight gradient: the im2col columns of a group of images
  kTransposed,      //   ... and its transposed output gradient
  kWinoWeights,     // Winograd: transformed weights (the weight gradient's products), the calling thread's
  kWinoInput,       //   a block's transformed input (the weight gradient's transformed input)
  kWinoProducts,    //   a block's products (the weight gradient's transformed output gradient)
  kWinoRows,        //   row buffers
  kWinoInputT,      //   the weight gradient's transposed operands
  kWinoOutputT,
  kCount,
};

// The operand slot of operand i (0, 1: inputs; 2: output).
inline Slot OperandSlot(int i) { return static_cast<Slot>(i); }

struct Scratch {
  void *ptr = nullptr;
  size_t size = 0;
  void *Get(size_t n);    // at least n bytes (grown, contents lost), nullptr when allocation failed
  void Touch(size_t n);   // grow to n bytes and fault the pages in
  ~Scratch();
};

struct ScratchSet {
  Scratch buffers[static_cast<int>(Slot::kCount)];
};

// Holds a set for this thread for the lease's lifetime (nested leases share the outer one).
struct ScratchLease {
  bool owner = false;
  ScratchLease();
  ~ScratchLease();
  ScratchLease(const ScratchLease &) = delete;
  ScratchLease &operator=(const ScratchLease &) = delete;
};

// Buffer `slot` of the calling thread's leased set.
Scratch &ScratchBuffer(Slot slot);
// Bytes held by every set; *sets (when given) receives how many sets exist.
size_t ScratchBytes(int *sets);

}  // namespace vzconv
