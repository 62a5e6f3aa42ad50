"""Pretrain torchvision's own GoogLeNet (BatchNorm flavour, as the ``googlenet_bn.tv_in1k`` tag) with torch
on scikit-learn's digits and save its ``state_dict`` as a ``.pth``: a real torchvision checkpoint for the
fine-tuning test, made in a separate process (torch and MindSpore thread pools do not share a process
well).

usage: python tv_pretrain.py OUT.pth SEED PER_CLASS EPOCHS
The first PER_CLASS images of each of the 10 digits, upsampled 8x8 -> 32x32 as tests/test_finetune.py
writes them, normalised with ImageNet's mean/std (the tag's preprocessing); prints the training
accuracy.
"""

import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tv_models import torchvision_models  # noqa: E402

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def digit_pixels(img8: np.ndarray) -> np.ndarray:
    """One 8x8 digit (0..16) as the 32x32 uint8 grey image the test's folders hold."""
    return np.kron(img8 / 16.0 * 255, np.ones((4, 4))).astype(np.uint8)


def main() -> None:
    out, seed, per_class, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.manual_seed(seed)
    digits = load_digits()
    idx = np.concatenate([np.flatnonzero(digits.target == c)[:per_class] for c in range(10)])
    grey = np.stack([digit_pixels(img) for img in digits.images[idx]]).astype(np.float32) / 255.0
    x = np.stack([(grey - m) / s for m, s in zip(MEAN, STD)], axis=1).astype(np.float32)
    X, Y = torch.from_numpy(x), torch.from_numpy(digits.target[idx].astype(np.int64))
    _, tv_googlenet = torchvision_models()
    net = tv_googlenet.GoogLeNet(num_classes=10, aux_logits=False, transform_input=True, init_weights=True)
    opt = torch.optim.SGD(net.parameters(), lr=float(os.environ.get("PRE_LR", "0.01")), momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X) - 31, 32):
            batch = perm[i : i + 32]
            loss = torch.nn.functional.cross_entropy(net(X[batch]), Y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(X).argmax(1) == Y).float().mean().item()
    torch.save(net.state_dict(), out)
    print(f"train_accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
