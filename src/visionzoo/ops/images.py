"""visionzoo's training-image kernels: one call turns a batch of encoded JPEGs into the network's input.

Per image: RandomResizedCrop's box (MindSpore's algorithm), decoding of only that region with the
system's libjpeg-turbo and its SIMD kernels (MindSpore's own decoder runs without them), bilinear
resizing with OpenCV's conventions, RandomColorAdjust (brightness, contrast, saturation in a random
order), flips, HWC -> CHW and normalisation, with no Python between the steps. The random choices come
from uniform draws the caller passes (:data:`DRAWS_PER_IMAGE` per image), so seeding stays in Python.

The library is compiled once per machine like the convolution kernels (:mod:`visionzoo.ops._build`),
linked with ``-ljpeg``: it needs libjpeg-turbo's headers (Debian/Ubuntu ``libjpeg-dev``, Fedora
``libjpeg-turbo-devel``). Without them :func:`train_image_kernels` returns None and the data layer uses
MindSpore's standard ops (raises under ``VISIONZOO_FAST_OPS=require``).
"""

from __future__ import annotations

import ctypes
from typing import Optional, Sequence, Tuple

import numpy as np

from ._build import build_library, load_once

__all__ = ["TrainParams", "TrainImageKernels", "train_image_kernels", "DRAWS_PER_IMAGE", "OK", "UNSUPPORTED", "CORRUPT"]

#: Uniform draws one image consumes, by offset (``csrc/train_images/params.h``): 4 per box attempt (scale,
#: log-ratio, x, y; 10 attempts), 2 flips (horizontal, vertical), 4 keys whose order is the order of the
#: colour adjustments (brightness, contrast, saturation, hue), 3 factors (brightness, contrast, saturation).
DRAW_BOX, DRAW_FLIPS, DRAW_ORDER, DRAW_FACTORS, DRAWS_PER_IMAGE = 0, 40, 42, 46, 49
#: Per-image statuses of :meth:`TrainImageKernels.jpeg_batch`.
OK, UNSUPPORTED, CORRUPT = 0, 1, 2
#: Indices of the colour adjustments (``which`` of :meth:`TrainImageKernels.adjust`).
BRIGHTNESS, CONTRAST, SATURATION = 0, 1, 2

_ERR = 512
_u8p = ctypes.POINTER(ctypes.c_uint8)
_f32p = ctypes.POINTER(ctypes.c_float)
_f64p = ctypes.POINTER(ctypes.c_double)
_i32p = ctypes.POINTER(ctypes.c_int32)
_i64p = ctypes.POINTER(ctypes.c_int64)


class TrainParams(ctypes.Structure):
    """The recipe's augmentation parameters, laid out as ``struct TrainParams`` in
    ``csrc/train_images/params.h``."""

    _fields_ = [
        ("scale_lo", ctypes.c_double),
        ("scale_hi", ctypes.c_double),
        ("ratio_lo", ctypes.c_double),
        ("ratio_hi", ctypes.c_double),
        ("out_h", ctypes.c_int32),
        ("out_w", ctypes.c_int32),
        ("hflip_p", ctypes.c_double),
        ("vflip_p", ctypes.c_double),
        ("jitter_lo", ctypes.c_double * 3),
        ("jitter_hi", ctypes.c_double * 3),
        ("mean", ctypes.c_float * 3),
        ("std", ctypes.c_float * 3),
    ]

    @classmethod
    def make(
        cls,
        size: int,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (0.75, 4.0 / 3.0),
        hflip: float = 0.0,
        vflip: float = 0.0,
        jitter: Sequence[Tuple[float, float]] = ((1.0, 1.0),) * 3,
        mean: Sequence[float] = (0.0, 0.0, 0.0),
        std: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> "TrainParams":
        """``jitter``: (lo, hi) factor ranges of brightness, contrast and saturation; (1, 1) is off."""
        return cls(
            float(scale[0]),
            float(scale[1]),
            float(ratio[0]),
            float(ratio[1]),
            int(size),
            int(size),
            float(hflip),
            float(vflip),
            (ctypes.c_double * 3)(*(float(lo) for lo, _ in jitter)),
            (ctypes.c_double * 3)(*(float(hi) for _, hi in jitter)),
            (ctypes.c_float * 3)(*mean),
            (ctypes.c_float * 3)(*std),
        )


def _ptr(array: np.ndarray, kind):
    return array.ctypes.data_as(kind)


def _check_out(out: np.ndarray, shape: Tuple[int, ...]) -> None:
    """The kernels write ``shape`` float32 values at ``out``'s address: refuse anything else (TypeError: a
    caller's mistake, unlike the ValueError of an image that does not decode)."""
    if out.dtype != np.float32 or out.shape != shape or not out.flags.c_contiguous or not out.flags.writeable:
        raise TypeError(
            f"out must be a writeable C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}"
        )


def _draws(draws: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """``draws`` as contiguous float64 of ``shape`` (the kernels read that many values)."""
    draws = np.ascontiguousarray(draws, dtype=np.float64)
    if draws.shape != shape:
        raise TypeError(f"draws must have shape {shape}, got {draws.shape}")
    return draws


class TrainImageKernels:
    """The loaded library's entry points, with numpy in and out."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.VzTrainJpegBatch.restype = ctypes.c_int
        lib.VzTrainJpegBatch.argtypes = [
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_void_p),
            _i64p,
            _f64p,
            ctypes.POINTER(TrainParams),
            _f32p,
            _i32p,
            _i32p,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.VzTrainPixels.argtypes = [
            _u8p,
            ctypes.c_int,
            ctypes.c_int,
            _f64p,
            ctypes.POINTER(TrainParams),
            _f32p,
            _i32p,
        ]
        lib.VzJpegSize.argtypes = [_u8p, ctypes.c_int64, _i32p, ctypes.c_char_p, ctypes.c_int]
        lib.VzDecodeJpegRegion.argtypes = [_u8p, ctypes.c_int64, _i32p, _u8p, ctypes.c_char_p, ctypes.c_int]
        lib.VzCropBox.argtypes = [ctypes.c_int, ctypes.c_int, _f64p, ctypes.POINTER(TrainParams), _i32p]
        lib.VzResizeLinear.argtypes = [_u8p, ctypes.c_int, ctypes.c_int, ctypes.c_int, _u8p, ctypes.c_int, ctypes.c_int]
        lib.VzAdjust.argtypes = [_u8p, ctypes.c_int64, ctypes.c_int, ctypes.c_float]
        lib.VzToTensor.argtypes = [_u8p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, _f32p, _f32p, _f32p]
        if lib.VzDrawsPerImage() != DRAWS_PER_IMAGE:
            raise RuntimeError(
                f"{path}: the library draws {lib.VzDrawsPerImage()} values per image, not {DRAWS_PER_IMAGE}"
            )
        self.lib = lib

    def jpeg_batch(
        self, images: Sequence[np.ndarray], draws: np.ndarray, params: TrainParams, out: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Encoded images (1-D uint8) -> ``out`` (float32 N x 3 x H x W); returns (statuses, boxes x/y/w/h).
        Images with status :data:`UNSUPPORTED` are left for :meth:`pixels`. A corrupt image raises
        ``ValueError`` with the decoder's message and its index."""
        n = len(images)
        _check_out(out, (n, 3, params.out_h, params.out_w))
        images = [np.ascontiguousarray(a, dtype=np.uint8) for a in images]
        pointers = (ctypes.c_void_p * n)(*(a.ctypes.data for a in images))
        sizes = np.array([a.size for a in images], dtype=np.int64)
        status = np.zeros(n, dtype=np.int32)
        boxes = np.zeros((n, 4), dtype=np.int32)
        err = ctypes.create_string_buffer(_ERR)
        draws = _draws(draws, (n, DRAWS_PER_IMAGE))
        bad = self.lib.VzTrainJpegBatch(
            n, pointers, _ptr(sizes, _i64p), _ptr(draws, _f64p), ctypes.byref(params), _ptr(out, _f32p),
            _ptr(status, _i32p), _ptr(boxes, _i32p), err, _ERR,
        )  # fmt: skip
        if bad >= 0:
            raise ValueError(f"image {bad} of the batch: {err.value.decode(errors='replace')}")
        return status, boxes

    def pixels(self, rgb: np.ndarray, draws: np.ndarray, params: TrainParams, out: np.ndarray) -> np.ndarray:
        """One decoded uint8 H x W x 3 image -> ``out`` (float32 3 x H' x W'); returns the box (x, y, w, h)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise TypeError(f"pixels must be H x W x 3, got shape {rgb.shape}")
        _check_out(out, (3, params.out_h, params.out_w))
        draws = _draws(draws, (DRAWS_PER_IMAGE,))
        box = np.zeros(4, dtype=np.int32)
        self.lib.VzTrainPixels(
            _ptr(rgb, _u8p), rgb.shape[0], rgb.shape[1], _ptr(draws, _f64p), ctypes.byref(params),
            _ptr(out, _f32p), _ptr(box, _i32p),
        )  # fmt: skip
        return box

    def jpeg_size(self, data: np.ndarray) -> Tuple[int, Tuple[int, int]]:
        """(status, (height, width)) from a JPEG's header."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        hw = np.zeros(2, dtype=np.int32)
        err = ctypes.create_string_buffer(_ERR)
        status = self.lib.VzJpegSize(_ptr(data, _u8p), data.size, _ptr(hw, _i32p), err, _ERR)
        return status, (int(hw[0]), int(hw[1]))

    def decode_region(self, data: np.ndarray, box: Sequence[int]) -> np.ndarray:
        """Pixels (uint8 h x w x 3) of ``box`` = (x, y, w, h) of a JPEG; ValueError if it does not decode."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        b = np.asarray(box, dtype=np.int32)
        out = np.zeros((int(b[3]), int(b[2]), 3), dtype=np.uint8)
        err = ctypes.create_string_buffer(_ERR)
        status = self.lib.VzDecodeJpegRegion(_ptr(data, _u8p), data.size, _ptr(b, _i32p), _ptr(out, _u8p), err, _ERR)
        if status != OK:
            raise ValueError(err.value.decode(errors="replace") or "not a JPEG this decoder takes")
        return out

    def crop_box(self, height: int, width: int, draws: np.ndarray, params: TrainParams) -> Tuple[int, int, int, int]:
        """RandomResizedCrop's box (x, y, w, h) for a ``height`` x ``width`` image and one image's draws."""
        draws = _draws(draws, (DRAWS_PER_IMAGE,))
        box = np.zeros(4, dtype=np.int32)
        self.lib.VzCropBox(int(height), int(width), _ptr(draws, _f64p), ctypes.byref(params), _ptr(box, _i32p))
        return tuple(int(v) for v in box)

    def resize(self, image: np.ndarray, height: int, width: int) -> np.ndarray:
        """Bilinear resize of a uint8 H x W x 3 image (the library's planar result, back in HWC)."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        planes = np.zeros((3, int(height), int(width)), dtype=np.uint8)
        h, w = image.shape[:2]
        self.lib.VzResizeLinear(_ptr(image, _u8p), h, w, w * 3, _ptr(planes, _u8p), int(height), int(width))
        return planes.transpose(1, 2, 0).copy()

    def adjust(self, image: np.ndarray, which: int, factor: float) -> np.ndarray:
        """One colour adjustment (:data:`BRIGHTNESS`, :data:`CONTRAST`, :data:`SATURATION`) of a uint8
        H x W x 3 image, by ``factor``."""
        planes = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
        self.lib.VzAdjust(_ptr(planes, _u8p), planes.size // 3, int(which), float(factor))
        return planes.transpose(1, 2, 0).copy()

    def to_tensor(
        self, image: np.ndarray, hflip: bool, vflip: bool, mean: Sequence[float], std: Sequence[float]
    ) -> np.ndarray:
        """Flips and normalisation of a uint8 H x W x 3 image -> float32 3 x H x W."""
        planes = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
        _, h, w = planes.shape
        out = np.zeros((3, h, w), dtype=np.float32)
        m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.lib.VzToTensor(
            _ptr(planes, _u8p), h, w, int(hflip), int(vflip), _ptr(m, _f32p), _ptr(s, _f32p), _ptr(out, _f32p)
        )
        return out


#: Extra compiler arguments: no fused multiply-adds but those the sources write (the AVX2 clones of the
#: kernels must compute what MindSpore's OpenCV computes), and the system's libjpeg-turbo.
_FLAGS = ("-ffp-contract=off", "-ljpeg")


def _load(retry: bool = False) -> str:
    return build_library("train_images", link_args=_FLAGS, what="JPEG training kernels", retry=retry)


_library_path = load_once(_load)
_kernels: list = []


def train_image_kernels() -> Optional[TrainImageKernels]:
    """The kernels, built on first use; None where they cannot be built (the reason is logged once)."""
    if not _kernels:
        path = _library_path()
        if path is None:
            return None
        _kernels.append(TrainImageKernels(path))
    return _kernels[0]
