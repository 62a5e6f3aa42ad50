// Scratch buffers and the pool of sets (scratch.h).
#include "scratch.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace vzconv {
namespace {
std::mutex g_mutex;
std::vector<ScratchSet *> g_all, g_free;  // guarded by g_mutex; never freed
thread_local ScratchSet *t_set = nullptr;
}  // namespace

void *Scratch::Get(size_t n) {
  if (n > size) {
    std::free(ptr);
    ptr = std::aligned_alloc(64, (n + 63) / 64 * 64);
    size = ptr ? n : 0;
  }
  return ptr;
}

void Scratch::Touch(size_t n) {
  const size_t before = size;
  if (n > before && Get(n) != nullptr) std::memset(ptr, 0, size);
}

Scratch::~Scratch() { std::free(ptr); }

ScratchLease::ScratchLease() {
  if (t_set != nullptr) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_free.empty()) {
    g_all.push_back(new ScratchSet());
    g_free.push_back(g_all.back());
  }
  t_set = g_free.back();
  g_free.pop_back();
  owner = true;
}

ScratchLease::~ScratchLease() {
  if (!owner) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_free.push_back(t_set);
  t_set = nullptr;
}

Scratch &ScratchBuffer(Slot slot) {
  if (t_set == nullptr) {  // outside a lease (should not happen): a set of the thread's own
    thread_local ScratchLease own;
  }
  return t_set->buffers[static_cast<int>(slot)];
}

size_t ScratchBytes(int *sets) {
  std::lock_guard<std::mutex> lock(g_mutex);
  size_t total = 0;
  for (const ScratchSet *set : g_all)
    for (const Scratch &b : set->buffers) total += b.size;
  if (sets != nullptr) *sets = int(g_all.size());
  return total;
}

}  // namespace vzconv
