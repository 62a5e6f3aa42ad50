"""MindSpore's ``RandomSampler`` order, computed in numpy: the order ``ImageFolderDataset(shuffle=True)``
and ``Cifar10Dataset(shuffle=True)`` read, and so MindCV's training order.

MindSpore 2.10's sampler (``RandomSamplerRT``) holds the ids 0..n-1 and, at the start of epoch ``e``,
shuffles the previous epoch's order in place with ``std::shuffle`` and a ``std::mt19937`` seeded with
``seed + e`` (32-bit, wrapping). Its binary was built against a libstdc++ whose ``std::shuffle`` draws
two swap positions per random number while ``n * n`` fits in 32 bits, and whose
``uniform_int_distribution`` scales down with rejection (later libstdc++ versions use another method,
so a fresh C++ build would not reproduce it). numpy's legacy ``RandomState(seed)`` is the same
Mersenne Twister with the same seeding, so its raw outputs are the generator's. ``tests/test_data.py``
compares the result with MindSpore's own sampler.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

__all__ = ["random_sampler_order"]

_U32 = 0xFFFFFFFF
_BLOCK = 4096  # raw outputs drawn from numpy at a time


class _Mt19937:
    """``std::mt19937(seed)``'s raw 32-bit outputs, one at a time."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.RandomState(seed & _U32)._bit_generator
        self._buffer: list = []

    def __call__(self) -> int:
        if not self._buffer:
            self._buffer = self._bits.random_raw(_BLOCK).tolist()[::-1]
        return self._buffer.pop()


def _uniform(draw: _Mt19937, high: int) -> int:
    """``uniform_int_distribution(0, high)`` of that libstdc++: downscaling with rejection."""
    range_ = high + 1
    scaling = _U32 // range_
    past = range_ * scaling
    value = draw()
    while value >= past:
        value = draw()
    return value // scaling


def _shuffle(ids: list, seed: int) -> None:
    """``std::shuffle(ids, std::mt19937(seed))`` of that libstdc++, in place."""
    draw, n = _Mt19937(seed), len(ids)
    if n < 2:
        return
    if _U32 // n >= n:  # two positions from one draw
        i = 1
        if n % 2 == 0:
            j = _uniform(draw, 1)
            ids[1], ids[j] = ids[j], ids[1]
            i = 2
        while i < n:
            b0 = i + 1
            b1 = b0 + 1
            x = _uniform(draw, b0 * b1 - 1)
            j = x // b1
            ids[i], ids[j] = ids[j], ids[i]
            j = x % b1
            ids[i + 1], ids[j] = ids[j], ids[i + 1]
            i += 2
        return
    for i in range(1, n):
        j = _uniform(draw, i)
        ids[i], ids[j] = ids[j], ids[i]


#: (n, seed) -> (epoch, order): consecutive epochs cost one shuffle each.
_LAST: Dict[Tuple[int, int], Tuple[int, list]] = {}


def random_sampler_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of ``n`` samples in ``epoch`` (0-based) under dataset seed ``seed``."""
    key = (int(n), int(seed))
    done, ids = _LAST.get(key, (-1, None))
    if ids is None or done > epoch:
        done, ids = -1, list(range(int(n)))
    while done < epoch:
        done += 1
        _shuffle(ids, (int(seed) + done) & _U32)
    _LAST.clear()  # one sequence at a time: memory stays at one epoch of ids
    _LAST[key] = (done, ids)
    return np.array(ids, dtype=np.int64)
