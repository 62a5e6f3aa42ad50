"""Transforms honour the recipe: exact normalisation of known inputs, sizes, flips, crops, erasing."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

import data_utils as du
import visionzoo  # noqa: F401  sets the CPU runtime defaults before MindSpore runs
from visionzoo.config import Config
from visionzoo.data import build_dataset
from visionzoo.data import transforms as tf
from visionzoo.errors import DataError

RGB = np.array([100, 150, 200], dtype=np.float32)


def _cfg(**kw) -> Config:
    base = dict(num_parallel_workers=2, batch_size=8, image_resize=32, seed=3)
    base.update(kw)
    return Config(**base)


def _images(bundle) -> np.ndarray:
    return np.concatenate([r["image"] for r in bundle.dataset.create_dict_iterator(output_numpy=True, num_epochs=1)])


@pytest.fixture
def constant_cifar(tmp_path):
    du.write_cifar10_arrays(str(tmp_path), np.broadcast_to(RGB.astype(np.uint8), (8, 32, 32, 3)).copy(), range(8))
    return str(tmp_path)


@pytest.fixture
def gradient_cifar(tmp_path):
    # pixel value depends on row and column, differently per channel: flips are visible
    y, x = np.mgrid[0:32, 0:32]
    img = np.stack([x * 7 % 256, y * 5 % 256, (x + 2 * y) % 256], axis=-1).astype(np.uint8)
    du.write_cifar10_arrays(str(tmp_path), np.broadcast_to(img, (4, 32, 32, 3)).copy(), range(4))
    return str(tmp_path)


def _expect(mean, std) -> np.ndarray:
    return ((RGB - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


@pytest.mark.parametrize("split", ["train", "val"])
def test_cifar_constant_image_normalises_exactly(constant_cifar, split):
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 5.0)
    cfg = _cfg(dataset="cifar10", data_dir=constant_cifar, num_classes=10, mean=mean, std=std, crop_padding=0)
    out = _images(build_dataset(cfg, split))
    assert out.shape == ((40 if split == "train" else 8), 3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.broadcast_to(_expect(mean, std)[None, :, None, None], out.shape), rtol=1e-6)
    assert np.allclose(_expect(mean, std), [45.0, 32.5, 34.0])


def test_cifar_default_mean_std_and_upscale(constant_cifar):
    cfg = _cfg(dataset="cifar10", data_dir=constant_cifar, num_classes=10, image_resize=48)
    out = _images(build_dataset(cfg, "val"))
    assert out.shape == (8, 3, 48, 48)
    want = _expect(np.array([0.4914, 0.4822, 0.4465]) * 255, np.array([0.2023, 0.1994, 0.2010]) * 255)
    np.testing.assert_allclose(out, np.broadcast_to(want[None, :, None, None], out.shape), rtol=1e-5, atol=1e-5)


def test_cifar_crop_padding_pads_with_zeros(constant_cifar):
    cfg = _cfg(
        dataset="cifar10",
        data_dir=constant_cifar,
        num_classes=10,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        crop_padding=4,
        batch_size=8,
    )
    out = np.concatenate([_images(build_dataset(cfg, "train")) for _ in range(3)])
    assert set(np.unique(out[:, 0])) <= {0.0, 100.0} and (out == 0).any() and (out == 100).any()


@pytest.mark.parametrize("key,axis", [("hflip", 3), ("vflip", 2)])
def test_cifar_flips_follow_the_recipe(gradient_cifar, key, axis):
    common = dict(dataset="cifar10", data_dir=gradient_cifar, num_classes=10, crop_padding=0, hflip=0.0)
    plain = _images(build_dataset(_cfg(**common), "val"))
    flipped = _images(build_dataset(_cfg(**{**common, key: 1.0}), "train"))  # 5 train files: 16 images
    np.testing.assert_array_equal(flipped, np.broadcast_to(np.flip(plain[:1], axis=axis), flipped.shape))
    unflipped = _images(build_dataset(_cfg(**common), "train"))  # hflip 0, vflip 0: identity
    np.testing.assert_array_equal(unflipped, np.broadcast_to(plain[:1], unflipped.shape))


@pytest.mark.parametrize("value,fill", [("0", 0.0), ("3", 3.0), ("random", None)])
def test_random_erasing_follows_re_prob_and_re_value(constant_cifar, value, fill):
    cfg = _cfg(
        dataset="cifar10",
        data_dir=constant_cifar,
        num_classes=10,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        crop_padding=0,
        re_prob=1.0,
        re_value=value,
    )
    out = _images(build_dataset(cfg, "train"))
    for img in out:  # every image has an erased patch and keeps the rest
        erased = (img != RGB[:, None, None]).any(axis=0)
        assert erased.any() and not erased.all()
        if fill is not None:
            assert (img[:, erased] == fill).all()
    cfg.re_prob = 0.0
    assert (_images(build_dataset(cfg, "train")) == RGB[None, :, None, None]).all()


def test_fractional_re_value_is_refused(constant_cifar):
    cfg = _cfg(dataset="cifar10", data_dir=constant_cifar, num_classes=10, re_prob=0.5, re_value="2.5")
    with pytest.raises(DataError, match=r"re_value must be an integer in 0-255 or 'random', got '2.5'"):
        build_dataset(cfg, "train")


def _write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


@pytest.fixture
def constant_folder(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for i in range(2):
                _write_png(
                    str(tmp_path / split / cls / f"{i}.png"), np.broadcast_to(RGB.astype(np.uint8), (30, 20, 3)).copy()
                )
    return str(tmp_path)


@pytest.mark.parametrize("split", ["train", "val"])
def test_folder_constant_image_normalises_exactly_at_image_resize(constant_folder, split):
    cfg = _cfg(
        dataset="imagenet",
        data_dir=constant_folder,
        num_classes=2,
        image_resize=24,
        color_jitter=0.0,
        hflip=0.5,
        vflip=0.5,
        batch_size=4,
    )
    out = _images(build_dataset(cfg, split))
    assert out.shape == (4, 3, 24, 24)
    want = _expect(tf.IMAGENET_MEAN, tf.IMAGENET_STD)
    np.testing.assert_allclose(out, np.broadcast_to(want[None, :, None, None], out.shape), rtol=1e-5, atol=1e-5)


def test_folder_color_jitter_changes_colours(constant_folder):
    cfg = _cfg(
        dataset="imagenet", data_dir=constant_folder, num_classes=2, image_resize=16, color_jitter=0.4, batch_size=4
    )
    out = np.concatenate([_images(build_dataset(cfg, "train")) for _ in range(2)])
    plain = _expect(tf.IMAGENET_MEAN, tf.IMAGENET_STD)
    assert not np.allclose(out[:, :, 0, 0], plain[None, :], atol=1e-3)


def test_eval_resize_uses_crop_pct(tmp_path):
    # 40x40 image, a 20x20 bright square in the middle: with crop_pct 0.5 the 16x16 centre crop of a
    # 32x32 resize lies inside the square; with crop_pct 1.0 the corners show the dark background.
    img = np.full((40, 40, 3), 50, np.uint8)
    img[10:30, 10:30] = 200
    _write_png(str(tmp_path / "val" / "a" / "0.png"), img)
    base = dict(
        dataset="imagenet", data_dir=str(tmp_path), num_classes=1, image_resize=16, mean=(0, 0, 0), std=(1, 1, 1)
    )
    tight = _images(build_dataset(_cfg(crop_pct=0.5, **base), "val"))
    loose = _images(build_dataset(_cfg(crop_pct=1.0, **base), "val"))
    assert tight.shape == loose.shape == (1, 3, 16, 16)
    assert tight[0, :, 0, 0].tolist() == [200.0] * 3 and loose[0, :, 0, 0].tolist() == [50.0] * 3
    ops = tf.imagenet_eval(_cfg(image_resize=224, crop_pct=0.875), tf.IMAGENET_MEAN, tf.IMAGENET_STD)
    assert tuple(ops[1].c_size) == (256,) and tuple(ops[2].size) == (224, 224)


@pytest.mark.parametrize("policy", ["randaug-m9-mstd0.5", "autoaug", "trivialaugwide"])
def test_mindcv_auto_augment_policies_run(constant_folder, policy):
    cfg = _cfg(
        dataset="imagenet", data_dir=constant_folder, num_classes=2, image_resize=16, auto_augment=policy, batch_size=4
    )
    out = _images(build_dataset(cfg, "train"))
    assert out.shape == (4, 3, 16, 16) and np.isfinite(out).all()


def test_unknown_auto_augment_policy_is_refused(constant_folder):
    cfg = _cfg(dataset="imagenet", data_dir=constant_folder, num_classes=2, auto_augment="augmix-m5")
    with pytest.raises(DataError, match=r"auto_augment 'augmix-m5' is not supported"):
        build_dataset(cfg, "train")


def test_interpolation_names_and_lanczos_fallback(caplog):
    assert tf._interpolation("bicubic").name == "BICUBIC" and tf._interpolation("nearest").name == "NEAREST"
    with caplog.at_level(logging.WARNING, logger="visionzoo.data.transforms"):
        assert tf._interpolation("lanczos").name == "BICUBIC"
    assert "no native MindSpore kernel" in caplog.text


def test_mean_std_validation():
    with pytest.raises(DataError, match=r"std values must be > 0"):
        tf.resolve_mean_std(_cfg(std=(1, 0, 1)), "imagenet")
    assert tf.resolve_mean_std(_cfg(), "digits") == (tf.DIGITS_MEAN, tf.DIGITS_STD)


# ------------------------------------------------------------------ changed ops against the ops they replace


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """16 real photos (crops of scikit-learn's sample photos), 500x375, JPEG quality 90."""
    root = str(tmp_path_factory.mktemp("photos"))
    du.write_photo_folder(root, "train", classes=2, per_class=8)
    return root


def _run_ops(root: str, ops, seed: int):
    """The images the ops give for every file of ``root/train`` in file order, under dataset seed ``seed``."""
    import mindspore.dataset as ds

    previous = ds.config.get_seed()
    ds.config.set_seed(seed)
    try:
        data = ds.ImageFolderDataset(os.path.join(root, "train"), shuffle=False, num_parallel_workers=1)
        data = data.map(operations=ops, input_columns="image", num_parallel_workers=1)
        return [row[0] for row in data.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    finally:
        ds.config.set_seed(previous)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_train_crop_decode_matches_decode_then_random_resized_crop(photo_folder, interpolation):
    import mindspore.dataset.vision as V

    cfg = _cfg(dataset="imagenet", image_resize=224, interpolation=interpolation)
    first = tf.imagenet_train(cfg, tf.IMAGENET_MEAN, tf.IMAGENET_STD)[0]
    assert isinstance(first, V.RandomCropDecodeResize)
    reference = [
        V.Decode(),
        V.RandomResizedCrop(
            224, scale=tuple(cfg.scale), ratio=tuple(cfg.ratio), interpolation=tf._interpolation(interpolation)
        ),
    ]
    for seed in (1, 2):
        ours, theirs = _run_ops(photo_folder, [first], seed), _run_ops(photo_folder, reference, seed)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape == (224, 224, 3)
            diff = np.abs(a.astype(np.int16) - b).max(axis=-1)
            # same crop box: away from the box's edge the pixels are identical; at the edge the JPEG
            # decoder's chroma upsampling sees no neighbours outside the crop, so a few pixels differ
            assert diff[8:-8, 8:-8].max() == 0
            assert (diff <= 1).mean() >= 0.99


def test_eval_pil_decode_gives_mindspore_decode_pixels(photo_folder, tmp_path):
    import mindspore.dataset.vision as V

    from visionzoo.data.decode import PilDecode

    photo = np.asarray(Image.open(du.write_photo_folder(str(tmp_path), "x", classes=1, per_class=1)[0]))
    files = {}
    for mode in ("RGB", "L", "P", "RGBA"):
        image = Image.fromarray(photo).convert(mode)
        for fmt in ("PNG", "JPEG") if mode in ("RGB", "L") else ("PNG",):
            path = str(tmp_path / f"{mode}.{fmt.lower()}")
            image.save(path, format=fmt, quality=90)
            files[path] = mode
    Image.fromarray(photo).convert("CMYK").save(str(tmp_path / "cmyk.jpeg"), format="JPEG", quality=90)
    files[str(tmp_path / "cmyk.jpeg")] = "CMYK"
    files.update({p: "RGB" for p in du.write_photo_folder(str(tmp_path), "more", classes=1, per_class=4, seed=3)})
    for path in files:
        raw = np.fromfile(path, dtype=np.uint8)
        ours, theirs = PilDecode()(raw), V.Decode()(raw)
        assert ours.dtype == np.uint8 and ours.shape == theirs.shape == photo.shape[:2] + (3,)
        np.testing.assert_array_equal(ours, theirs, err_msg=path)
    with pytest.raises(OSError):
        PilDecode()(np.frombuffer(b"\xff\xd8\xff\xe0 not a jpeg body \xff\xd9", dtype=np.uint8))


def test_eval_ops_match_mindcv_eval_transforms(photo_folder):
    from mindcv.data import create_transforms

    cfg = _cfg(dataset="imagenet", image_resize=224, crop_pct=0.875)
    ours = _run_ops(photo_folder, tf.imagenet_eval(cfg, tf.IMAGENET_MEAN, tf.IMAGENET_STD), 0)
    theirs = _run_ops(photo_folder, create_transforms("imagenet", image_resize=224, is_training=False), 0)
    assert len(ours) == len(theirs) == 16
    for a, b in zip(ours, theirs):  # MindCV rescales to 0-1 first: float rounding only
        assert a.shape == b.shape == (3, 224, 224) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_chw_before_normalize_gives_the_same_numbers(photo_folder):
    import mindspore.dataset.vision as V

    mean, std = list(tf.IMAGENET_MEAN), list(tf.IMAGENET_STD)
    decoded = _run_ops(photo_folder, [V.Decode(), V.CenterCrop(224)], 0)
    for image in decoded[:4]:
        ours = image
        for op in tf._normalize_chw(mean, std):
            ours = op(ours)
        theirs = V.HWC2CHW()(V.Normalize(mean=mean, std=std)(image))
        assert ours.dtype == theirs.dtype == np.float32
        np.testing.assert_array_equal(ours, theirs)


@pytest.fixture(scope="module")
def photo_batch(photo_folder):
    """16 real photos as a uint8 16 x 32 x 32 x 3 batch (CIFAR-sized)."""
    paths = sorted(os.path.join(r, f) for r, _, fs in os.walk(photo_folder) for f in fs)
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.BILINEAR)) for p in paths])


def test_batch_random_crop_is_mindspore_pad_then_crop_at_the_drawn_offsets(photo_batch):
    import mindspore.dataset.vision as V

    from visionzoo.data.batches import BatchRandomCrop

    op = BatchRandomCrop(32, 4, seed=0)
    seen = []
    for _ in range(8):
        out = op(photo_batch)
        assert out.shape == photo_batch.shape and out.dtype == np.uint8
        for image, crop, (top, left) in zip(photo_batch, out, op.last):
            np.testing.assert_array_equal(crop, V.Crop((int(top), int(left)), 32)(V.Pad(4)(image)))
        seen.append(op.last)
    offsets = np.concatenate(seen)
    # MindSpore's RandomCrop: every offset 0..2*padding equally likely, rows and columns drawn apart
    assert set(offsets[:, 0].tolist()) == set(offsets[:, 1].tolist()) == set(range(9))


@pytest.mark.parametrize("axis", [1, 2])
def test_batch_flip_is_mindspore_flip_with_its_probability(photo_batch, axis):
    import mindspore.dataset.vision as V

    from visionzoo.data.batches import BatchFlip

    reference = V.VerticalFlip() if axis == 1 else V.HorizontalFlip()
    op = BatchFlip(0.3, axis=axis, seed=1)
    flips = []
    for _ in range(40):
        out = op(photo_batch)
        for image, got, flipped in zip(photo_batch, out, op.last):
            np.testing.assert_array_equal(got, reference(image) if flipped else image)
        flips.append(op.last)
    assert 0.25 < np.mean(flips) < 0.35  # 640 draws of p = 0.3: 4 standard deviations either side


def test_batch_normalize_chw_is_mindspore_normalize_bit_for_bit(photo_batch):
    import mindspore.dataset.vision as V

    from visionzoo.data.batches import BatchNormalizeCHW

    for mean, std in ((tf.CIFAR_MEAN, tf.CIFAR_STD), (tf.IMAGENET_MEAN, tf.IMAGENET_STD)):
        out = BatchNormalizeCHW(mean, std)(photo_batch)
        ref = np.stack([V.HWC2CHW()(V.Normalize(list(mean), list(std))(image)) for image in photo_batch])
        assert out.dtype == ref.dtype == np.float32
        np.testing.assert_array_equal(out, ref)


def test_batched_resize_gives_each_image_its_own_resize(photo_batch):
    import mindspore.dataset.vision as V

    for inter in (V.Inter.BILINEAR, V.Inter.BICUBIC):
        op = V.Resize(56, interpolation=inter)
        np.testing.assert_array_equal(op(photo_batch), np.stack([op(image) for image in photo_batch]))


def test_cifar_batches_are_the_same_with_one_or_two_workers(tmp_path, monkeypatch):
    from visionzoo.data import loader

    monkeypatch.setattr(loader, "IN_MEMORY_ONE_WORKER_CPUS", 0)  # really use two workers here
    du.write_cifar10(str(tmp_path), per_file=(8,) * 5)
    runs = []
    for workers in (1, 2, 2):
        cfg = _cfg(
            dataset="cifar10", data_dir=str(tmp_path), num_classes=10, image_resize=40, num_parallel_workers=workers
        )
        rows = build_dataset(cfg, "train").dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
        runs.append([(x, y) for x, y in rows])
    for other in runs[1:]:
        for (x, y), (x2, y2) in zip(runs[0], other):
            assert x.shape == (8, 3, 40, 40) and x.dtype == np.float32 and y.dtype == np.int32
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(y, y2)


def test_batch_augmentation_does_not_depend_on_the_batch_size(photo_batch):
    from visionzoo.data.batches import BatchFlip, BatchRandomCrop

    for make in (lambda: BatchRandomCrop(32, 4, seed=5), lambda: BatchFlip(0.5, axis=2, seed=5)):
        whole, halves = make(), make()
        np.testing.assert_array_equal(
            whole(photo_batch), np.concatenate([halves(photo_batch[:8]), halves(photo_batch[8:])])
        )
