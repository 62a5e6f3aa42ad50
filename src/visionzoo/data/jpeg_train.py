"""Folder training batches made by one C++ call each (:mod:`visionzoo.ops.images`), in the batch op.

The pipeline is ``ImageFolderDataset`` (encoded bytes, labels) -> ``batch(per_batch_map=FusedJpegTrain)``:
for every image the call draws RandomResizedCrop's box, decodes only that region with libjpeg-turbo's
SIMD kernels, resizes it bilinearly, applies RandomColorAdjust, the flips, HWC -> CHW and the
normalisation, and writes it into the batch. Each step gives what the MindSpore op it replaces gives
(tests compare them on real photos). Images the decoder does not take (PNG, BMP, CMYK JPEG) are decoded
with Pillow and go through the same steps.

Seeding: a batch's draws come from a numpy generator seeded with (epoch seed, batch number), so the
same seed gives the same batches whatever ``num_parallel_workers`` is; the epoch seed is set by
:meth:`~visionzoo.data.loader.DatasetBundle.set_epoch` through :meth:`FusedJpegTrain.reseed`.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .. import runtime
from ..errors import DataError, raise_in_pipeline
from ..ops import images
from .decode import PilDecode

__all__ = ["FusedJpegTrain", "fused_jpeg_train"]


class FusedJpegTrain:
    """``per_batch_map`` of the training folder pipeline: (encoded images, labels, batch info) ->
    (float32 N x 3 x size x size, int32 N)."""

    def __init__(self, kernels: images.TrainImageKernels, params: images.TrainParams, seed: int = 0) -> None:
        self.kernels, self.params, self.seed = kernels, params, int(seed)
        self._decode = PilDecode()

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)

    def draws(self, batch_num: int, n: int) -> np.ndarray:
        """The uniform draws of batch ``batch_num``'s ``n`` images (one row per image)."""
        return np.random.default_rng([self.seed, int(batch_num)]).random((n, images.DRAWS_PER_IMAGE))

    def __call__(self, encoded: List[np.ndarray], labels: List[np.ndarray], info: Any) -> Tuple[np.ndarray, np.ndarray]:
        n = len(encoded)
        draws = self.draws(info.get_batch_num(), n)
        out = np.empty((n, 3, self.params.out_h, self.params.out_w), dtype=np.float32)
        try:
            status, _ = self.kernels.jpeg_batch(encoded, draws, self.params, out)
            for i in np.flatnonzero(status == images.UNSUPPORTED):  # PNG, BMP, CMYK JPEG
                self.kernels.pixels(self._pillow(encoded[i], i), draws[i], self.params, out[i])
        except ValueError as err:
            raise_in_pipeline(
                DataError(f"a training image does not decode: {err}", hint="remove or replace the damaged file")
            )
        return out, np.asarray(labels, dtype=np.int32).reshape(n)

    def _pillow(self, data: np.ndarray, index: int) -> np.ndarray:
        try:
            return self._decode(data)
        except OSError as err:  # Pillow's word for a file it cannot read
            raise ValueError(f"image {index} of the batch: {err}") from None


def _jitter_range(value: float) -> Tuple[float, float]:
    return max(0.0, 1.0 - value), 1.0 + value


def fused_jpeg_train(cfg: Any, mean: Sequence[float], std: Sequence[float]) -> Optional[FusedJpegTrain]:
    """The fused batch op for the recipe, or None where the standard ops must run: switched off
    (:func:`visionzoo.runtime.fast_decode_enabled`), kernels not buildable (logged once), or a recipe the
    kernels do not cover (``auto_augment``, an interpolation other than bilinear)."""
    if not runtime.fast_decode_enabled() or cfg.auto_augment or str(cfg.interpolation).lower() != "bilinear":
        return None
    kernels = images.train_image_kernels()
    if kernels is None:
        return None
    cj = float(cfg.color_jitter or 0.0)
    params = images.TrainParams.make(
        int(cfg.image_resize),
        scale=tuple(cfg.scale),
        ratio=tuple(cfg.ratio),
        hflip=min(float(cfg.hflip), 1.0),
        vflip=min(float(cfg.vflip), 1.0),
        jitter=[_jitter_range(cj) if cj > 0 else (1.0, 1.0)] * 3,
        mean=mean,
        std=std,
    )
    return FusedJpegTrain(kernels, params, seed=int(cfg.seed))
