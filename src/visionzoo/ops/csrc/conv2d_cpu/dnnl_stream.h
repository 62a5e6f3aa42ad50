// The oneDNN engine, streams and primitive attributes the kernel runs with.
//
// MindSpore's oneDNN is built with the "threadpool" CPU runtime: a stream needs a threadpool, given here
// as an OpenMP-backed implementation of oneDNN's threadpool interface.
#pragma once

#include "dnnl_api.h"

namespace vzconv {

// oneDNN's CPU engine (created once; nullptr when creation failed).
dnnl_engine_t Engine();
// The calling thread's OpenMP-backed threadpool (also passed to oneDNN's sgemm).
void *Pool();
// One stream per calling thread (MindSpore may run independent ops on several threads): Stream() runs a
// primitive on all OpenMP threads, SerialStream() on the calling thread only (the batch-split runner).
dnnl_stream_t Stream();
dnnl_stream_t SerialStream();
// Every primitive is created with a user-managed scratchpad, and each calling thread passes its own: the
// same primitive may run on several threads at once (the batch split; MindSpore's parallel actors),
// where a library-managed scratchpad was found to be shared (oneDNN 3.10's brgemm convolution gave wrong
// results when two threads ran it concurrently). ReluAttr() adds a ReLU post-op (no extra pass over the
// output), for the fused eval-mode Conv -> BatchNorm -> ReLU. nullptr when oneDNN refused.
const_dnnl_primitive_attr_t Attr();
const_dnnl_primitive_attr_t ReluAttr();

}  // namespace vzconv
