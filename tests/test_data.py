"""Data pipelines: sources, errors, sharding, determinism (tiny generated data in tmp_path)."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

import data_utils as du
import visionzoo  # noqa: F401  sets the CPU runtime defaults before MindSpore runs
from visionzoo.config import Config
from visionzoo.data import DatasetBundle, build_dataset
from visionzoo.data import transforms as tf
from visionzoo.data.digits import load_digits_split, split_indices
from visionzoo.data.loader import ShardSampler, choose_workers
from visionzoo.errors import DataError


def _cfg(**kw) -> Config:
    base = dict(num_parallel_workers=2, batch_size=4, image_resize=32, seed=7)
    base.update(kw)
    return Config(**base)


def _collect(bundle: DatasetBundle):
    """(images N x C x H x W, labels N) over one epoch."""
    images, labels = [], []
    for row in bundle.dataset.create_dict_iterator(output_numpy=True, num_epochs=1):
        images.append(row["image"])
        labels.append(row["label"])
    return np.concatenate(images), np.concatenate(labels)


def _denorm(images: np.ndarray, mean, std) -> np.ndarray:
    """N x C x H x W normalised -> N x H x W x C in 0-255 units."""
    return images.transpose(0, 2, 3, 1) * np.asarray(std) + np.asarray(mean)


# ---------------------------------------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("nested", [True, False])
def test_cifar10_any_record_count_both_data_dir_forms(tmp_path, nested):
    data = du.write_cifar10(str(tmp_path), per_file=(3, 2, 4, 1, 2), n_test=7, nested=nested)
    cfg = _cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10)
    val = build_dataset(cfg, "val")
    assert (val.num_samples, val.num_batches, val.batch_size) == (7, 2, 4)
    assert val.class_names[:3] == ["airplane", "automobile", "bird"] and len(val.class_names) == 10
    images, labels = _collect(val)
    assert images.shape == (7, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, data["val_labels"])
    np.testing.assert_allclose(_denorm(images, tf.CIFAR_MEAN, tf.CIFAR_STD), data["val_images"], atol=1e-3)

    train = build_dataset(
        _cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, drop_remainder=False), "train"
    )
    assert (train.num_samples, train.num_batches) == (12, 3)
    dropped = build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, batch_size=5), "train")
    assert (dropped.num_samples, dropped.num_batches, dropped.dataset.get_dataset_size()) == (12, 2, 2)
    assert _collect(dropped)[1].size == 10  # drop_remainder True drops the last 2
    _, train_labels = _collect(train)
    assert sorted(train_labels.tolist()) == sorted(data["train_labels"].tolist())


def test_cifar100_fine_labels_and_class_names(tmp_path):
    names = [f"fine_{i}" for i in range(100)]
    data = du.write_cifar100(str(tmp_path), n_train=13, n_test=5, names=names)
    cfg = _cfg(dataset="cifar100", data_dir=str(tmp_path), num_classes=100)
    val = build_dataset(cfg, "val")
    assert val.num_classes == 100 and val.class_names == names and val.num_samples == 5
    images, labels = _collect(val)
    np.testing.assert_array_equal(labels, data["val_labels"])  # fine labels, not the coarse byte
    np.testing.assert_allclose(_denorm(images, tf.CIFAR_MEAN, tf.CIFAR_STD), data["val_images"], atol=1e-3)
    os.remove(tmp_path / "cifar-100-binary" / "fine_label_names.txt")
    cfg.data_dir = str(tmp_path / "cifar-100-binary")  # the folder itself works too
    cfg.drop_remainder = False
    train = build_dataset(cfg, "train")
    assert train.num_samples == 13 and train.class_names[:2] == ["class_0", "class_1"]
    assert sorted(_collect(train)[1].tolist()) == sorted(data["train_labels"].tolist())


def test_cifar_bad_size_names_file_and_record_size(tmp_path):
    du.write_cifar10(str(tmp_path))
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError) as err:
        build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10), "train")
    msg = str(err.value)
    assert str(path) in msg and "6145 bytes is not a whole number of cifar10 records of 3073 bytes" in msg


def test_cifar_label_out_of_range_is_refused(tmp_path):
    du.write_cifar10(str(tmp_path))
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    raw = bytearray(path.read_bytes())
    raw[0] = 42  # first record's label byte
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch\.bin: label 42 is out of range for cifar10 \(10 classes\)"):
        build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10), "val")


def test_cifar_empty_file_is_refused(tmp_path):
    du.write_cifar10(str(tmp_path))
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"test_batch\.bin: 0 bytes is not a whole number"):
        build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10), "val")


def test_cifar_missing_file_is_named(tmp_path):
    du.write_cifar10(str(tmp_path))
    os.remove(tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin")
    with pytest.raises(DataError) as err:
        build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10), "train")
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "cifar-10-batches-bin", "data_batch_3.bin") + ": missing" in msg
    assert "data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin" in msg


def test_cifar_empty_folder(tmp_path):
    with pytest.raises(DataError) as err:
        build_dataset(_cfg(dataset="cifar100", data_dir=str(tmp_path), num_classes=100), "train")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path}: no cifar100 binary files found") and "cifar-100-binary/train.bin" in msg


# ---------------------------------------------------------------------------------------------- folders


def test_folder_classes_labels_and_order_match_image_folder_dataset(tmp_path):
    values = du.write_image_folder(str(tmp_path), "val", ["dog", "Cat", "bird"], per_class=3)
    cfg = _cfg(
        dataset="imagenet",
        data_dir=str(tmp_path),
        num_classes=3,
        image_resize=16,
        crop_pct=1.0,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        batch_size=5,
    )
    val = build_dataset(cfg, "val")
    assert val.class_names == ["Cat", "bird", "dog"]  # sorted folder names
    assert (val.num_samples, val.num_batches, val.num_classes) == (9, 2, 3)
    images, labels = _collect(val)
    assert images.shape == (9, 3, 16, 16)
    # our scan order is ImageFolderDataset's order: index k reads the k-th file written
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.asarray(list(values.values()), dtype=np.float32))
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2])


def test_folder_corrupt_images_are_skipped_with_warning(tmp_path, caplog):
    du.write_image_folder(str(tmp_path), "train", ["a", "b"], per_class=2)
    bad = tmp_path / "train" / "a" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    empty = tmp_path / "train" / "b" / "empty.png"
    empty.write_bytes(b"")
    # truncated copies: MindSpore raises on these mid-epoch (or dies with SIGFPE on a cut JPEG header)
    du.write_image_folder(str(tmp_path / "cut"), "x", ["c"], per_class=1, size=(64, 48), fmt="jpg")
    whole_jpeg = (tmp_path / "cut" / "x" / "c" / "img_0.jpg").read_bytes()
    cut_jpeg = tmp_path / "train" / "a" / "cut.jpg"
    cut_jpeg.write_bytes(whole_jpeg[: len(whole_jpeg) // 2])
    cut_png = tmp_path / "train" / "b" / "cut.png"
    cut_png.write_bytes((tmp_path / "train" / "b" / "img_0.png").read_bytes()[:-20])
    cfg = _cfg(dataset="imagenet", data_dir=str(tmp_path), num_classes=2, image_resize=16, batch_size=2)
    with caplog.at_level(logging.WARNING, logger="visionzoo.data.folder"):
        bundle = build_dataset(cfg, "train")
    assert bundle.num_samples == 4
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "skipping 4 of 8 files that are empty, truncated or not JPEG/PNG" in warning
    assert all(str(p) in warning for p in (bad, empty, cut_jpeg, cut_png))
    images, labels = _collect(bundle)
    assert images.shape == (4, 3, 16, 16) and sorted(labels.tolist()) == [0, 0, 1, 1]


def test_folder_errors_name_the_folder(tmp_path):
    cfg = _cfg(dataset="imagenet", data_dir=str(tmp_path), num_classes=2)
    with pytest.raises(DataError, match=rf"{tmp_path / 'train'}: split folder not found"):
        build_dataset(cfg, "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match=rf"{tmp_path / 'train'}: no class folders"):
        build_dataset(cfg, "train")
    (tmp_path / "train" / "x").mkdir()
    (tmp_path / "train" / "x" / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"none of the 1 image files is a readable JPEG, PNG or BMP"):
        build_dataset(cfg, "train")


def test_folders_and_prediction_read_the_same_image_types(tmp_path):
    """One list of image extensions (visionzoo.constants.IMAGE_EXTENSIONS): a BMP is a class image too."""
    from PIL import Image

    from visionzoo.data import folder
    from visionzoo.data.images import list_images

    for cls, ext in (("a", "bmp"), ("b", "PNG")):
        (tmp_path / "train" / cls).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / "train" / cls / f"x.{ext}")
    index = folder.scan_image_folder(str(tmp_path), "train")
    assert [os.path.basename(f) for f in index.files] == ["x.bmp", "x.PNG"] and list(index.valid) == [0, 1]
    assert [os.path.basename(f) for f in list_images(tmp_path / "train")] == ["x.bmp", "x.PNG"]
    bundle = build_dataset(
        _cfg(
            dataset="imagenet", data_dir=str(tmp_path), val_split="train", num_classes=2, image_resize=8, batch_size=2
        ),
        "val",
    )
    images, labels = next(bundle.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert bundle.num_samples == 2 and images.shape == (2, 3, 8, 8) and sorted(labels.tolist()) == [0, 1]


def test_class_count_mismatch_states_both_numbers(tmp_path):
    du.write_image_folder(str(tmp_path), "train", ["a", "b", "c"], per_class=1)
    with pytest.raises(DataError, match=r"has 3 classes but num_classes is 1000"):
        build_dataset(_cfg(dataset="imagenet", data_dir=str(tmp_path), num_classes=1000), "train")
    du.write_cifar10(str(tmp_path))
    with pytest.raises(DataError, match=r"has 10 classes but num_classes is 100; set num_classes 10"):
        build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=100), "val")


# ------------------------------------------------------------------------------ digits, synthetic


def test_digits_split_sizes_balance_and_fixed_seed():
    train_x, train_y, names = load_digits_split("train")
    val_x, val_y, _ = load_digits_split("val")
    assert names == [str(i) for i in range(10)]
    assert train_x.shape == (1438, 8, 8, 3) and val_x.shape == (359, 8, 8, 3)
    assert train_x.dtype == np.uint8 and train_x.max() == 255 and train_x.min() == 0
    assert np.array_equal(train_x[..., 0], train_x[..., 2])  # grey replicated to 3 channels
    counts_val, counts_all = np.bincount(val_y), np.bincount(np.concatenate([train_y, val_y]))
    np.testing.assert_array_equal(counts_val, np.round(0.2 * counts_all).astype(int))  # stratified 80/20
    tr, va = split_indices(np.concatenate([train_y, val_y]))  # disjoint, covering
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    for seed in (1, 2):  # the split does not follow cfg.seed
        bundle = build_dataset(_cfg(dataset="digits", num_classes=10, seed=seed, batch_size=100), "val")
        assert (bundle.num_samples, bundle.num_batches) == (359, 4)
        np.testing.assert_array_equal(_collect(bundle)[1], val_y)


def test_digits_train_never_flips_and_upscales():
    cfg = _cfg(dataset="digits", num_classes=10, hflip=0.5, image_resize=24)
    ops = tf.array_train(cfg, *tf.resolve_mean_std(cfg, "digits"), 8, crop_after_resize=True, allow_hflip=False)
    assert not any(type(op).__name__ == "RandomHorizontalFlip" for op in ops)
    images, labels = _collect(
        build_dataset(
            _cfg(dataset="digits", num_classes=10, image_resize=24, batch_size=512, drop_remainder=True), "train"
        )
    )
    assert images.shape == (1024, 3, 24, 24) and labels.shape == (1024,)


def test_synthetic_size_and_determinism():
    cfg = _cfg(dataset="synthetic", num_classes=5, num_samples=20, image_resize=16, shuffle=False)
    a_img, a_lab = _collect(build_dataset(cfg, "train"))
    b_img, b_lab = _collect(build_dataset(cfg, "train"))
    assert a_img.shape == (20, 3, 16, 16) and a_lab.max() < 5
    np.testing.assert_array_equal(a_img, b_img)
    c_img, _ = _collect(
        build_dataset(
            _cfg(dataset="synthetic", num_classes=5, num_samples=20, image_resize=16, shuffle=False, seed=8), "train"
        )
    )
    assert not np.array_equal(a_img, c_img)
    default = build_dataset(_cfg(dataset="synthetic", num_classes=5, image_resize=8), "val")
    assert default.num_samples == 1024


def test_in_channels_other_than_three_is_refused():
    with pytest.raises(DataError, match=r"in_channels is 1 but every visionzoo pipeline yields 3-channel RGB"):
        build_dataset(_cfg(dataset="digits", num_classes=10, in_channels=1), "train")


def test_bad_split_and_shard_arguments():
    with pytest.raises(DataError, match="split must be 'train' or 'val'"):
        build_dataset(_cfg(dataset="digits", num_classes=10), "test")
    with pytest.raises(DataError, match=r"shard_id must be in \[0, num_shards\)"):
        build_dataset(_cfg(dataset="digits", num_classes=10), "val", shard_id=2, num_shards=2)


# ---------------------------------------------------------------------------------------------- sharding, determinism


def test_val_shards_cover_every_sample_exactly_once(tmp_path):
    data = du.write_cifar10(str(tmp_path), n_test=10)  # val labels are 0..9: one per sample
    assert sorted(data["val_labels"].tolist()) == list(range(10))
    cfg = _cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, batch_size=3, drop_remainder=True)
    seen, sizes = [], []
    for k in range(3):
        bundle = build_dataset(cfg, "val", shard_id=k, num_shards=3)
        _, labels = _collect(bundle)
        assert bundle.num_samples == labels.size and bundle.num_batches == -(-labels.size // 3)
        assert bundle.dataset.get_dataset_size() == bundle.num_batches
        sizes.append(labels.size)
        seen += labels.tolist()
    assert sizes == [4, 3, 3] and sorted(seen) == list(range(10))  # no padding, nothing dropped


def test_train_shards_are_even_and_cover_every_sample(tmp_path):
    du.write_cifar10(str(tmp_path), per_file=(2, 2, 2, 2, 2))  # 10 train samples
    cfg = _cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, batch_size=2, drop_remainder=False)
    sampler_epochs = [
        ShardSampler(np.arange(10), k, 3, shuffle=True, seed=7, pad=True).epoch_indices(0) for k in range(3)
    ]
    assert [s.size for s in sampler_epochs] == [4, 4, 4]
    assert set(np.concatenate(sampler_epochs).tolist()) == set(range(10))
    labels = []
    for k in range(3):
        bundle = build_dataset(cfg, "train", shard_id=k, num_shards=3)
        assert (bundle.num_samples, bundle.num_batches) == (4, 2) == (4, bundle.dataset.get_dataset_size())
        labels += _collect(bundle)[1].tolist()
    assert len(labels) == 12 and set(labels) == set(du.write_cifar10(str(tmp_path / "x"), (2,) * 5)["train_labels"])


def test_shard_sampler_reshuffles_each_epoch_and_val_is_exact():
    s = ShardSampler(np.arange(100), 0, 1, shuffle=True, seed=3, pad=True)
    e0, e1 = list(iter(s)), list(iter(s))
    assert sorted(e0) == sorted(e1) == list(range(100)) and e0 != e1
    val = [ShardSampler(np.arange(10), k, 3).epoch_indices(0).tolist() for k in range(3)]
    assert val == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_train_pipeline_is_deterministic_given_the_seed(tmp_path):
    du.write_cifar10(str(tmp_path), per_file=(6, 6, 6, 6, 6))
    base = dict(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, batch_size=10)
    a = _collect(build_dataset(_cfg(**base), "train"))
    b = _collect(build_dataset(_cfg(**base), "train"))
    c = _collect(build_dataset(_cfg(seed=8, **base), "train"))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[0], c[0])


def test_num_samples_limits_training_set(tmp_path):
    du.write_image_folder(str(tmp_path), "train", ["a", "b"], per_class=5, size=(8, 8))
    cfg = _cfg(dataset="imagenet", data_dir=str(tmp_path), num_classes=2, num_samples=6, image_resize=8, batch_size=3)
    bundle = build_dataset(cfg, "train")
    assert (bundle.num_samples, bundle.num_batches) == (6, 2)
    assert _collect(bundle)[0].shape == (6, 3, 8, 8)


def test_choose_workers_caps_at_cpus_and_uses_one_for_in_memory_on_small_machines(caplog):
    with caplog.at_level(logging.INFO, logger="visionzoo.data.loader"):
        assert choose_workers(8, in_memory=False, cpus=2) == 2
    assert "num_parallel_workers 8 capped at 2 (CPUs here: 2)" in caplog.text
    assert choose_workers(8, in_memory=True, cpus=2) == 1
    assert choose_workers(8, in_memory=True, cpus=16) == 8
    assert choose_workers(1, in_memory=False, cpus=16) == 1


def test_train_order_changes_every_epoch_in_the_pipeline(tmp_path):
    du.write_cifar10(str(tmp_path), per_file=(6, 6, 6, 6, 6))
    bundle = build_dataset(_cfg(dataset="cifar10", data_dir=str(tmp_path), num_classes=10, batch_size=30), "train")
    it = bundle.dataset.create_dict_iterator(output_numpy=True, num_epochs=3)
    epochs = [np.concatenate([row["label"] for row in it]) for _ in range(3)]
    assert all(sorted(e.tolist()) == sorted(epochs[0].tolist()) for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_folder_train_is_deterministic_with_two_workers(tmp_path):
    du.write_image_folder(str(tmp_path), "train", ["a", "b", "c"], per_class=8, size=(40, 30), fmt="jpg")

    def run(seed):
        cfg = _cfg(
            dataset="imagenet",
            data_dir=str(tmp_path),
            num_classes=3,
            batch_size=8,
            image_resize=16,
            num_parallel_workers=2,
            color_jitter=0.4,
            seed=seed,
        )
        return _collect(build_dataset(cfg, "train"))

    (a, la), (b, lb), (_, lc) = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)


def test_threaded_file_check_matches_serial(tmp_path, monkeypatch):
    from visionzoo.data import folder

    du.write_image_folder(str(tmp_path), "train", ["a", "b", "c"], per_class=7, size=(8, 8))
    for name in ("a/img_3.png", "c/img_6.png"):
        (tmp_path / "train" / name).write_bytes(b"\x89PNG\r\n\x1a\ncut")
    serial = folder.scan_image_folder(str(tmp_path), "train")
    monkeypatch.setattr(folder, "_PARALLEL_FROM", 1)
    threaded = folder.scan_image_folder(str(tmp_path), "train")
    assert threaded.valid.tolist() == serial.valid.tolist() and len(serial.valid) == 19
    assert threaded.skipped == serial.skipped == [str(tmp_path / "train" / n) for n in ("a/img_3.png", "c/img_6.png")]


def test_digits_pipeline_keeps_images_and_labels_aligned():
    # a linear classifier fitted on what the train pipeline yields scores >= 95% on the val pipeline
    from sklearn.linear_model import LogisticRegression

    cfg = _cfg(dataset="digits", num_classes=10, image_resize=8, crop_padding=0, batch_size=256, drop_remainder=False)
    x_train, y_train = _collect(build_dataset(cfg, "train"))
    x_val, y_val = _collect(build_dataset(cfg, "val"))
    clf = LogisticRegression(max_iter=2000).fit(x_train[:, 0].reshape(len(x_train), -1), y_train)
    assert clf.score(x_val[:, 0].reshape(len(x_val), -1), y_val) >= 0.95


def test_set_epoch_gives_each_epoch_its_own_reproducible_order():
    from visionzoo.config import load_config

    cfg = load_config(
        None,
        {
            "dataset": "digits",
            "num_classes": "10",
            "image_resize": "8",
            "batch_size": "8",
            "num_samples": "40",
            "num_parallel_workers": "1",
            "hflip": "0",
        },
    )
    bundle = build_dataset(cfg, "train")

    def first_labels(epoch):
        bundle.set_epoch(epoch)
        batch = next(bundle.dataset.create_tuple_iterator(num_epochs=1))
        return batch[1].asnumpy().tolist()

    e0, e1, e2 = first_labels(0), first_labels(1), first_labels(2)
    assert len({tuple(e0), tuple(e1), tuple(e2)}) == 3
    assert first_labels(1) == e1 and first_labels(0) == e0


def _mindspore_sampler_orders(n: int, seed: int, epochs: int):
    """What MindSpore's own RandomSampler reads in each epoch: an index-only pipeline, one row per epoch."""
    import mindspore.dataset as ds

    previous = ds.config.get_seed()
    ds.config.set_seed(seed)
    try:
        source = ds.NumpySlicesDataset(np.arange(n, dtype=np.int64), column_names=["i"], sampler=ds.RandomSampler())
        iterator = source.batch(n).create_tuple_iterator(num_epochs=epochs, output_numpy=True)
        orders = []
        for _ in range(epochs):
            orders.append(next(iterator)[0])
            for _ in iterator:  # ends the epoch (an epoch is that one row)
                pass
        return orders
    finally:
        ds.config.set_seed(previous)


@pytest.mark.parametrize(
    "n,seed", [(1, 0), (2, 3), (10, 0), (11, 7), (232, 0), (1000, 2**32 - 1), (50000, 11), (70000, 7)]
)
def test_sampler_order_is_mindspores_random_sampler_order(n, seed):
    from visionzoo.data.sampler_order import random_sampler_order

    epochs = 2 if n > 10000 else 3
    theirs = _mindspore_sampler_orders(n, seed, epochs)
    for epoch in reversed(range(epochs)):  # later epochs first: the cache restarts from epoch 0
        np.testing.assert_array_equal(random_sampler_order(n, seed, epoch), theirs[epoch], err_msg=f"epoch {epoch}")
    np.testing.assert_array_equal(random_sampler_order(n, seed, epochs - 1), theirs[-1])
