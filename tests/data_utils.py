"""Tiny datasets written on the fly for tests: CIFAR binaries, image folders, CIFAR-10 archives.

Reusable by any test: each writer returns what it wrote so a test can compare against it.
"""

from __future__ import annotations

import io
import os
import tarfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR100_FOLDER = "cifar-100-binary"


def cifar_records(n: int, num_classes: int, seed: int, coarse: bool = False) -> Tuple[bytes, np.ndarray, np.ndarray]:
    """(file bytes, images uint8 N x 32 x 32 x 3, labels) for ``n`` random CIFAR records."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) + seed) % num_classes  # every class appears once n >= num_classes
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # R, G, B planes
    head = [labels[:, None].astype(np.uint8)]
    if coarse:
        head.insert(0, (labels[:, None] // 5).astype(np.uint8))  # coarse label first, then fine
    records = np.concatenate(head + [planes], axis=1)
    return records.tobytes(), images, labels.astype(np.int32)


def write_cifar10(
    data_dir: str, per_file: Sequence[int] = (3, 2, 4, 1, 2), n_test: int = 7, nested: bool = True
) -> Dict[str, np.ndarray]:
    """Write a CIFAR-10 binary folder with the given record counts (train files 1..5, test).

    ``nested``: files go in ``data_dir/cifar-10-batches-bin`` (else directly in ``data_dir``).
    Returns {"train_images", "train_labels", "val_images", "val_labels"}.
    """
    folder = os.path.join(data_dir, CIFAR10_FOLDER) if nested else data_dir
    os.makedirs(folder, exist_ok=True)
    train_x, train_y = [], []
    for i, n in enumerate(per_file, start=1):
        raw, x, y = cifar_records(n, 10, seed=i)
        with open(os.path.join(folder, f"data_batch_{i}.bin"), "wb") as f:
            f.write(raw)
        train_x.append(x)
        train_y.append(y)
    raw, vx, vy = cifar_records(n_test, 10, seed=100)
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(raw)
    return {
        "train_images": np.concatenate(train_x),
        "train_labels": np.concatenate(train_y),
        "val_images": vx,
        "val_labels": vy,
    }


def write_cifar100(
    data_dir: str, n_train: int = 13, n_test: int = 5, names: Optional[List[str]] = None
) -> Dict[str, np.ndarray]:
    """Write ``data_dir/cifar-100-binary/{train,test}.bin`` (and fine_label_names.txt if ``names``)."""
    folder = os.path.join(data_dir, CIFAR100_FOLDER)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for split, n, seed, fname in (("train", n_train, 1, "train.bin"), ("val", n_test, 2, "test.bin")):
        raw, x, y = cifar_records(n, 100, seed=seed, coarse=True)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(raw)
        out[f"{split}_images"], out[f"{split}_labels"] = x, y
    if names is not None:
        with open(os.path.join(folder, "fine_label_names.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(names) + "\n")
    return out


def write_image_folder(
    data_dir: str,
    split: str,
    classes: Sequence[str],
    per_class: int = 3,
    size: Tuple[int, int] = (20, 30),
    fmt: str = "png",
) -> Dict[str, int]:
    """Write constant-colour images ``data_dir/split/<class>/img_<i>.<fmt>``.

    Image ``k`` (counted over the whole split in sorted order) has every pixel equal to
    ``(k * 7) % 250`` so a test can tell images apart after decoding. Returns {path: that value}.
    """
    from PIL import Image

    values = {}
    k = 0
    for name in sorted(classes):
        folder = os.path.join(data_dir, split, name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            value = (k * 7) % 250
            path = os.path.join(folder, f"img_{i}.{fmt}")
            img = Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8))
            img.save(path, format="PNG" if fmt == "png" else "JPEG", quality=100)
            values[path] = value
            k += 1
    return values


def cifar10_archive(
    path: str, per_file: Sequence[int] = (2, 2, 2, 2, 2), n_test: int = 3, extra: Optional[List[tarfile.TarInfo]] = None
) -> str:
    """Write a .tar.gz in the official layout (``cifar-10-batches-bin/...``) with tiny files.

    ``extra`` members (e.g. a path-escaping or symlink entry) are appended. Returns ``path``.
    """
    with tarfile.open(path, "w:gz") as tar:
        files = [(f"data_batch_{i}.bin", n, i) for i, n in enumerate(per_file, start=1)]
        files.append(("test_batch.bin", n_test, 100))
        for name, n, seed in files:
            raw, _, _ = cifar_records(n, 10, seed)
            info = tarfile.TarInfo(f"{CIFAR10_FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for info in extra or []:
            data = b"x" * info.size if info.isfile() else None
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_cifar10_arrays(data_dir: str, images: np.ndarray, labels: Sequence[int]) -> str:
    """Write the given uint8 N x 32 x 32 x 3 images as every CIFAR-10 file (train and test alike).

    Returns the folder written (``data_dir/cifar-10-batches-bin``).
    """
    folder = os.path.join(data_dir, CIFAR10_FOLDER)
    os.makedirs(folder, exist_ok=True)
    n = images.shape[0]
    planes = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    raw = np.concatenate([np.asarray(labels, np.uint8)[:, None], planes], axis=1).tobytes()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)
    return folder


def write_photo_folder(
    data_dir: str,
    split: str = "train",
    classes: int = 2,
    per_class: int = 8,
    size: Tuple[int, int] = (500, 375),
    quality: int = 90,
    seed: int = 0,
) -> List[str]:
    """Write real photos ``data_dir/split/c<k>/<i>.jpg``: crops/resizes of scikit-learn's sample photos.

    scikit-learn ships two JPEG photos (china.jpg, flower.jpg, 640x427); each file here is a random
    crop of one of them (at least half of each side) resized to ``size`` (W, H) and saved at JPEG
    ``quality``, so decoding and augmentation costs are those of camera images. Returns the paths.
    """
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(img) for img in load_sample_images().images]
    rng = np.random.default_rng(seed)
    paths = []
    for c in range(classes):
        folder = os.path.join(data_dir, split, f"c{c:03d}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            photo = photos[(c + i) % len(photos)]
            w, h = photo.size
            cw, ch = int(rng.integers(w // 2, w + 1)), int(rng.integers(h // 2, h + 1))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            box = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.BILINEAR)
            if rng.random() < 0.5:
                box = box.transpose(Image.FLIP_LEFT_RIGHT)
            path = os.path.join(folder, f"{i}.jpg")
            box.save(path, format="JPEG", quality=quality)
            paths.append(path)
    return paths
