"""The fused JPEG training images (ops/images.py, data/jpeg_train.py) against the MindSpore ops they
replace, on real photos: region decoding, resizing, colour adjustments, flips and normalisation step by
step; the crop box's and RandomColorAdjust's distributions against MindSpore's own random ops; and the
pipeline's seeding, fallbacks and errors."""

from __future__ import annotations

import io
import os

import mindspore.dataset as ds
import mindspore.dataset.vision as V
import numpy as np
import pytest
from PIL import Image
from scipy.stats import ks_2samp

import data_utils as du
import visionzoo  # noqa: F401  sets the CPU runtime defaults before MindSpore runs
from visionzoo import runtime
from visionzoo.config import Config
from visionzoo.data import build_dataset
from visionzoo.data import transforms as tf
from visionzoo.data.jpeg_train import FusedJpegTrain
from visionzoo.errors import DataError
from visionzoo.ops import images

MEAN, STD = tf.IMAGENET_MEAN, tf.IMAGENET_STD
ADJUST = {
    images.BRIGHTNESS: V.AdjustBrightness,
    images.CONTRAST: V.AdjustContrast,
    images.SATURATION: V.AdjustSaturation,
}


@pytest.fixture(scope="module")
def kernels():
    k = images.train_image_kernels()
    assert k is not None, "the JPEG training kernels did not build (libjpeg-turbo headers and a C++ compiler needed)"
    return k


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Encoded real photos: 500x375 4:2:0 quality 90, plus 4:4:4, 4:2:2, progressive, greyscale and odd sizes."""
    root = str(tmp_path_factory.mktemp("jpeg"))
    paths = du.write_photo_folder(root, "train", classes=1, per_class=6)
    blobs = [np.fromfile(p, dtype=np.uint8) for p in paths]
    base = Image.open(paths[0])
    variants = [
        dict(subsampling=0),
        dict(subsampling=1),
        dict(progressive=True),
    ]
    for kw in variants:
        buf = io.BytesIO()
        base.save(buf, format="JPEG", quality=85, **kw)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    for image in (base.convert("L"), base.resize((333, 217)), base.crop((0, 0, 17, 9))):
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    return blobs


def _params(size=224, cj=0.4, hflip=0.5, vflip=0.0, scale=(0.08, 1.0), ratio=(0.75, 4 / 3)):
    jitter = [(max(0.0, 1 - cj), 1 + cj) if cj else (1.0, 1.0)] * 3
    return images.TrainParams.make(size, scale, ratio, hflip, vflip, jitter, MEAN, STD)


# ------------------------------------------------------------------ each step against the op it replaces


def test_region_decode_gives_mindspore_decode_pixels(kernels, photos):
    rng = np.random.default_rng(0)
    for blob in photos:
        full = V.Decode()(blob)
        h, w = full.shape[:2]
        status, size = kernels.jpeg_size(blob)
        assert (status, size) == (images.OK, (h, w))
        boxes = [(0, 0, w, h), (w - 1, h - 1, 1, 1)]
        for _ in range(12):
            bw, bh = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
            boxes.append((int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1)), bw, bh))
        for x, y, bw, bh in boxes:
            np.testing.assert_array_equal(kernels.decode_region(blob, (x, y, bw, bh)), full[y : y + bh, x : x + bw])


def test_region_decode_refuses_what_it_cannot_take(kernels, photos, tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    assert kernels.jpeg_size(np.frombuffer(png.getvalue(), np.uint8))[0] == images.UNSUPPORTED
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(cmyk, format="JPEG")
    assert kernels.jpeg_size(np.frombuffer(cmyk.getvalue(), np.uint8))[0] == images.UNSUPPORTED
    with pytest.raises(ValueError, match="outside the image"):
        kernels.decode_region(photos[0], (0, 0, 501, 10))
    damaged = photos[0].copy()
    damaged[200:] = 0  # a body that ends in zeros
    damaged = damaged[:400]
    with pytest.raises(ValueError):
        kernels.decode_region(damaged, (0, 0, 500, 375))


@pytest.mark.parametrize("size", [(224, 224), (100, 300), (37, 41), (400, 500)])
def test_resize_gives_mindspore_resize_pixels(kernels, photos, size):
    for blob in photos[:6]:
        crop = np.ascontiguousarray(V.Decode()(blob)[10:300, 20:400])
        ours, theirs = kernels.resize(crop, *size), V.Resize(size)(crop)
        assert ours.shape == theirs.shape == size + (3,)
        diff = np.abs(ours.astype(np.int16) - theirs)
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.999


@pytest.mark.parametrize("which", [images.BRIGHTNESS, images.CONTRAST, images.SATURATION])
def test_colour_adjustments_give_mindspore_pixels(kernels, photos, which):
    image = V.Resize((224, 224))(V.Decode()(photos[1]))
    for factor in (0.0, 0.6, 0.83, 1.0, 1.27, 1.4, 2.5):
        ours, theirs = kernels.adjust(image, which, factor), ADJUST[which](factor)(image)
        diff = np.abs(ours.astype(np.int16) - theirs)
        assert diff.max() <= 1 and (diff == 0).mean() >= 0.999, (which, factor)


@pytest.mark.parametrize("hflip,vflip", [(False, False), (True, False), (False, True), (True, True)])
def test_flips_and_normalise_give_mindspore_numbers_bit_for_bit(kernels, photos, hflip, vflip):
    image = V.Resize((50, 70))(V.Decode()(photos[2]))
    ref = image
    if hflip:
        ref = V.HorizontalFlip()(ref)
    if vflip:
        ref = V.VerticalFlip()(ref)
    ref = V.Normalize(list(MEAN), list(STD), is_hwc=False)(V.HWC2CHW()(ref))
    np.testing.assert_array_equal(kernels.to_tensor(image, hflip, vflip, MEAN, STD), ref)


def _reference(blob, box, row, params, mindspore_order=True):
    """MindSpore's ops at the box, flips, order and factors that ``row`` of draws gives."""
    x, y, w, h = (int(v) for v in box)
    image = V.Decode()(blob)[y : y + h, x : x + w]
    image = V.Resize((params.out_h, params.out_w))(np.ascontiguousarray(image))
    if row[images.DRAW_FLIPS] < params.hflip_p:
        image = V.HorizontalFlip()(image)
    if row[images.DRAW_FLIPS + 1] < params.vflip_p:
        image = V.VerticalFlip()(image)
    keys = row[images.DRAW_ORDER : images.DRAW_ORDER + 4]
    for which in np.argsort(keys, kind="stable"):
        lo, hi = params.jitter_lo[which] if which < 3 else 1, params.jitter_hi[which] if which < 3 else 1
        if which == 3 or lo == hi == 1.0:
            continue
        factor = np.float32(lo + row[images.DRAW_FACTORS + which] * (hi - lo))
        image = ADJUST[which](float(factor))(image)
    return V.Normalize(list(MEAN), list(STD), is_hwc=False)(V.HWC2CHW()(image))


def test_a_batch_is_mindspores_chain_at_the_same_box_flips_and_factors(kernels, photos):
    params = _params(hflip=0.5, vflip=0.3)
    draws = np.random.default_rng(5).random((len(photos), images.DRAWS_PER_IMAGE))
    out = np.full((len(photos), 3, 224, 224), np.nan, dtype=np.float32)
    status, boxes = kernels.jpeg_batch(photos, draws, params, out)
    assert (status == images.OK).all()
    one_level = 1.0 / min(STD) + 1e-4  # a grey level in normalised units
    for i, blob in enumerate(photos):
        ref = _reference(blob, boxes[i], draws[i], params)
        diff = np.abs(out[i] - ref)
        assert diff.max() <= one_level and (diff < 1e-5).mean() >= 0.999, i


def test_pixels_path_gives_the_jpeg_paths_numbers(kernels, photos):
    params = _params()
    draws = np.random.default_rng(1).random((3, images.DRAWS_PER_IMAGE))
    out = np.zeros((3, 3, 224, 224), np.float32)
    _, boxes = kernels.jpeg_batch(photos[:3], draws, params, out)
    for i in range(3):
        mine = np.zeros((3, 224, 224), np.float32)
        box = kernels.pixels(V.Decode()(photos[i]), draws[i], params, mine)
        np.testing.assert_array_equal(box, boxes[i])
        np.testing.assert_array_equal(mine, out[i])


# ------------------------------------------------------------------ distributions against MindSpore's random ops


def _mindspore_boxes(h, w, n, scale, ratio):
    """Boxes MindSpore's RandomResizedCrop draws, read back from an image whose pixels are their own
    coordinates (bilinear interpolation of a linear ramp is exact)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([xs, ys, np.zeros_like(xs)], axis=-1)
    op = V.RandomResizedCrop(2, scale=scale, ratio=ratio)
    ds.config.set_seed(11)
    data = ds.NumpySlicesDataset([ramp] * n, column_names=["x"], shuffle=False).map(op, input_columns="x")
    boxes = []
    for (out,) in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
        # output centre i samples x0 + (i + 0.5) * w / 2 - 0.5 (clamped at the crop's edge for w < 2)
        (x0, x1), (y0, y1) = out[0, :, 0], out[:, 0, 1]
        bw, bh = max(1, round(2 * (x1 - x0))), max(1, round(2 * (y1 - y0)))
        boxes.append(
            (
                round(x0 - bw / 4 + 0.5) if bw > 1 else round(x0),
                round(y0 - bh / 4 + 0.5) if bh > 1 else round(y0),
                bw,
                bh,
            )
        )
    return np.array(boxes)


@pytest.mark.parametrize(
    "h,w,scale,ratio,fallbacks",
    [(375, 500, (0.08, 1.0), (0.75, 4 / 3), (0.0, 0.01)), (120, 400, (0.3, 1.0), (0.75, 4 / 3), (0.05, 0.95))],
)
def test_crop_boxes_follow_mindspores_random_resized_crop(kernels, h, w, scale, ratio, fallbacks):
    n = 1500
    theirs = _mindspore_boxes(h, w, n, scale, ratio)
    params = _params(scale=scale, ratio=ratio)
    draws = np.random.default_rng(2).random((n, images.DRAWS_PER_IMAGE))
    ours = np.array([kernels.crop_box(h, w, d, params) for d in draws])
    assert (ours[:, 0] + ours[:, 2] <= w).all() and (ours[:, 1] + ours[:, 3] <= h).all() and (ours >= 0).all()
    area, aspect, centre = (
        (lambda b: b[:, 2] * b[:, 3] / (h * w)),
        (lambda b: b[:, 2] / b[:, 3]),
        (lambda b: b[:, 0] + b[:, 2] / 2),
    )
    for stat in (area, aspect, centre):
        assert ks_2samp(stat(ours), stat(theirs)).pvalue > 1e-3
    # the centred fallback after 10 failed attempts (the whole height, the widest allowed width): as often
    cw = min(w, round(h * ratio[1]))
    fallback = np.array([round((w - cw) / 2), 0, cw, h])
    rate = [(b == fallback).all(axis=1).mean() for b in (ours, theirs)]
    assert abs(rate[0] - rate[1]) < 0.04 and fallbacks[0] <= rate[0] <= fallbacks[1]


def test_colour_jitter_follows_mindspores_random_color_adjust(kernels, photos):
    """Distribution of (mean, spread) of a jittered photo: MindSpore's RandomColorAdjust(0.4, 0.4, 0.4)
    against the kernels with random factors and order."""
    image = V.Resize((32, 32))(V.Decode()(photos[0]))
    n = 1500
    ds.config.set_seed(3)
    data = ds.NumpySlicesDataset([image] * n, column_names=["x"], shuffle=False)
    data = data.map(V.RandomColorAdjust(0.4, 0.4, 0.4), input_columns="x")
    theirs = np.stack([r[0] for r in data.create_tuple_iterator(output_numpy=True, num_epochs=1)]).astype(np.float32)
    params = _params(size=32, cj=0.4, hflip=0.0)
    draws = np.random.default_rng(4).random((n, images.DRAWS_PER_IMAGE))
    draws[:, images.DRAW_BOX + 0] = 0.99999  # the whole image: scale ~1, aspect 1, no offset
    draws[:, images.DRAW_BOX + 1] = np.log(1 / 0.75) / np.log((4 / 3) / 0.75)
    out = np.zeros((n, 3, 32, 32), np.float32)
    for i in range(n):
        assert kernels.pixels(image, draws[i], params, out[i]).tolist() == [0, 0, 32, 32]
    ours = out * np.asarray(STD, np.float32)[:, None, None] + np.asarray(MEAN, np.float32)[:, None, None]
    for stat in (
        lambda a: a.mean(axis=(1, 2, 3)),
        lambda a: a.std(axis=(1, 2, 3)),
        lambda a: a[..., 0].mean(axis=(1, 2)) - a[..., 2].mean(axis=(1, 2)),
    ):
        ours_s = stat(ours.transpose(0, 2, 3, 1))
        assert ks_2samp(ours_s, stat(theirs)).pvalue > 1e-3


# ------------------------------------------------------------------ the pipeline


def _cfg(root, **kw):
    base = dict(
        dataset="imagenet",
        data_dir=root,
        num_classes=2,
        image_resize=64,
        batch_size=4,
        seed=7,
        num_parallel_workers=1,
        color_jitter=0.4,
        hflip=0.5,
    )
    base.update(kw)
    return Config(**base)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("folder"))
    du.write_photo_folder(root, "train", classes=2, per_class=6)
    du.write_photo_folder(root, "val", classes=2, per_class=2)
    return root


def _epoch(bundle, epoch):
    bundle.set_epoch(epoch)
    return [(r[0], r[1]) for r in bundle.dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)]


def test_folder_training_uses_the_fused_batches_and_yields_normalised_chw(folder):
    bundle = build_dataset(_cfg(folder), "train")
    assert [type(op) for op in bundle.augmenters] == [FusedJpegTrain]
    batches = _epoch(bundle, 0)
    assert len(batches) == bundle.num_batches == 3
    for image, label in batches:
        assert image.shape == (4, 3, 64, 64) and image.dtype == np.float32 and label.dtype == np.int32
        assert np.isfinite(image).all() and -3 < image.min() < image.max() < 3


def test_same_seed_same_batches_with_one_or_two_workers_and_new_draws_each_epoch(folder):
    one, two = build_dataset(_cfg(folder), "train"), build_dataset(_cfg(folder, num_parallel_workers=2), "train")
    for epoch in (0, 1):
        for (a, la), (b, lb) in zip(_epoch(one, epoch), _epoch(two, epoch)):
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(a, b)
    first, second = _epoch(one, 0), _epoch(one, 1)
    assert not np.array_equal(first[0][0], second[0][0])


def test_switched_off_or_unsupported_recipes_keep_mindspores_ops(folder, monkeypatch):
    monkeypatch.setenv(runtime.FAST_DECODE_ENV, "0")
    assert build_dataset(_cfg(folder), "train").augmenters == []
    monkeypatch.delenv(runtime.FAST_DECODE_ENV)
    assert build_dataset(_cfg(folder, interpolation="bicubic"), "train").augmenters == []
    assert build_dataset(_cfg(folder, auto_augment="randaug-m9-mstd0.5"), "train").augmenters == []
    assert build_dataset(_cfg(folder), "val").augmenters == []


def test_png_and_cmyk_images_go_through_the_pixel_path(tmp_path, kernels):
    from visionzoo.data.decode import PilDecode

    photo = Image.open(du.write_photo_folder(str(tmp_path / "src"), "x", classes=1, per_class=1)[0])
    files = []
    for cls, (mode, fmt) in enumerate([("RGB", "PNG"), ("CMYK", "JPEG")]):
        os.makedirs(tmp_path / "data" / "train" / f"c{cls}")
        for i in range(2):
            path = str(tmp_path / "data" / "train" / f"c{cls}" / f"{i}.{fmt.lower()}")
            photo.convert(mode).save(path, format=fmt)
            files.append(path)
    bundle = build_dataset(_cfg(str(tmp_path / "data"), shuffle=False), "train")
    ((batch, labels),) = _epoch(bundle, 0)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    op = bundle.augmenters[0]
    draws = op.draws(0, 4)
    for k, path in enumerate(files):  # Pillow's pixels are MindSpore Decode's (test_data_transforms)
        want = np.zeros((3, 64, 64), np.float32)
        kernels.pixels(PilDecode()(np.fromfile(path, np.uint8)), draws[k], op.params, want)
        np.testing.assert_array_equal(batch[k], want)


def _headers_only(blob: np.ndarray) -> np.ndarray:
    """The JPEG's markers up to its first scan, then the end marker: no image data."""
    raw = blob.tobytes()
    return np.frombuffer(raw[: raw.index(b"\xff\xda")] + b"\xff\xd9", dtype=np.uint8)


def test_a_jpeg_without_image_data_stops_with_a_data_error(kernels, photos):
    op = FusedJpegTrain(kernels, _params(size=32))
    info = type("Info", (), {"get_batch_num": lambda self: 0})()
    with pytest.raises(
        DataError, match="^a training image does not decode: image 1 of the batch: .*; remove or replace"
    ):
        op([photos[1], _headers_only(photos[0])], [0, 1], info)


def test_without_the_kernels_folder_training_falls_back_or_raises_under_require(folder, monkeypatch, caplog):
    from visionzoo.ops._build import KernelBuildError, load_once

    def fail():
        raise KernelBuildError("JPEG training kernels", "jpeglib.h: No such file or directory")

    monkeypatch.setattr(images, "_library_path", load_once(fail))
    monkeypatch.setattr(images, "_kernels", [])
    bundle = build_dataset(_cfg(folder), "train")
    assert bundle.augmenters == [] and "JPEG training kernels are unavailable: jpeglib.h" in caplog.text
    assert _epoch(bundle, 0)[0][0].shape == (4, 3, 64, 64)
    monkeypatch.setenv(runtime.FAST_OPS_ENV, "require")
    with pytest.raises(KernelBuildError, match="jpeglib.h"):
        build_dataset(_cfg(folder), "train")


def test_the_baseline_and_avx2_copies_of_the_kernels_compute_the_same_numbers(kernels, photos):
    """The library's hot loops are compiled twice (x86-64 baseline and x86-64-v3, chosen at load time);
    a build with one baseline copy only must give the same batch bit for bit."""
    from visionzoo.ops._build import build_library

    baseline = images.TrainImageKernels(build_library("train_images", link_args=(*images._FLAGS, "-DVZ_NO_CLONES")))
    params = _params(hflip=0.5, vflip=0.5)
    draws = np.random.default_rng(9).random((len(photos), images.DRAWS_PER_IMAGE))
    a, b = (np.zeros((len(photos), 3, 224, 224), np.float32) for _ in range(2))
    kernels.jpeg_batch(photos, draws, params, a)
    baseline.jpeg_batch(photos, draws, params, b)
    np.testing.assert_array_equal(a, b)


_RUN = """
import sys
from visionzoo.cli import run_main
from visionzoo.config import Config
from visionzoo.data import build_dataset

def main(argv):
    cfg = Config(dataset="imagenet", data_dir=argv[0], num_classes=2, image_resize=32, batch_size=4, seed=0,
                 num_parallel_workers=1)
    bundle = build_dataset(cfg, "train")
    bundle.set_epoch(0)
    for _ in bundle.dataset.create_tuple_iterator(num_epochs=1):
        pass

run_main(main, sys.argv[1:])
"""


def test_a_damaged_jpeg_ends_a_command_with_one_line_and_status_2(tmp_path, photos):
    import subprocess
    import sys

    for cls in range(2):
        os.makedirs(tmp_path / "train" / f"c{cls}")
        for i in range(3):
            photos[i].tofile(str(tmp_path / "train" / f"c{cls}" / f"{i}.jpg"))
    _headers_only(photos[3]).tofile(str(tmp_path / "train" / "c1" / "3.jpg"))  # head and tail intact: not skipped
    run = subprocess.run([sys.executable, "-c", _RUN, str(tmp_path)], capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert len(lines) == 1 and lines[0].startswith("error: a training image does not decode: image ")
    assert lines[0].endswith("; remove or replace the damaged file")


def test_a_resumed_epoch_skipping_batches_sees_the_uninterrupted_batches(folder):
    """Mid-epoch resume skips the batches already run (the sink's ``dataset.skip``, the loop's ``next``):
    MindSpore's skip still runs the batch op for them, so batch numbers, and with them the draws, line up."""
    bundle = build_dataset(_cfg(folder), "train")
    whole = _epoch(bundle, 1)
    bundle.set_epoch(1)
    resumed = [r for r in bundle.dataset.skip(1).create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert len(resumed) == len(whole) - 1
    for (a, la), (b, lb) in zip(whole[1:], resumed):
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(a, b)


def test_the_binding_refuses_buffers_the_kernels_would_overrun(kernels, photos):
    params = _params(size=32)
    draws = np.zeros((2, images.DRAWS_PER_IMAGE))
    for bad in (np.zeros((2, 3, 32, 31), np.float32), np.zeros((2, 3, 32, 32), np.float64),
                np.zeros((2, 32, 32, 3), np.float32).transpose(0, 3, 1, 2)):  # fmt: skip
        with pytest.raises(TypeError, match="out must be"):
            kernels.jpeg_batch(photos[:2], draws, params, bad)
    with pytest.raises(TypeError, match="draws must have shape"):
        kernels.jpeg_batch(photos[:2], draws[:1], params, np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(TypeError, match="pixels must be"):
        kernels.pixels(np.zeros((8, 8), np.uint8), draws[0], params, np.zeros((3, 32, 32), np.float32))


def test_a_damaged_png_stops_with_the_same_data_error(kernels, photos):
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(png, format="PNG")
    damaged = np.frombuffer(png.getvalue()[:60] + b"\\0" * 40 + png.getvalue()[-12:], dtype=np.uint8)
    info = type("Info", (), {"get_batch_num": lambda self: 0})()
    with pytest.raises(DataError, match="^a training image does not decode: image 1 of the batch: "):
        FusedJpegTrain(kernels, _params(size=32))([photos[0], damaged], [0, 1], info)
