"""infer.py and the Predictor API: the validation pipeline's tensors, the network's own argmax, clear errors."""

import json
import os

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

import tiny_model  # noqa: F401  registers vz_tiny_test
from ckpt_utils import train_tiny, write_recipe
from script_utils import error_lines, run_script
from visionzoo import Predictor, create_model, predict  # the public API
from visionzoo.data import build_dataset
from visionzoo.data.digits import load_digits_split
from visionzoo.data.images import list_images
from visionzoo.data.transforms import DIGITS_MEAN, DIGITS_STD
from visionzoo.errors import DataError

N_IMAGES = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    cfg, ckpt = train_tiny(str(root / "ckpt"), lr=0.3)  # learns enough in 2 epochs to beat chance
    recipe = write_recipe(str(root / "recipe.yaml"), cfg)
    # the first validation digits as 8x8 PNG files, as a user would have them
    images, labels, _ = load_digits_split("val")
    folder = root / "images"
    folder.mkdir()
    for i in range(N_IMAGES):
        Image.fromarray(images[i]).save(folder / f"digit_{i:02d}.png")
    return {
        "root": root,
        "cfg": cfg,
        "ckpt": ckpt,
        "recipe": recipe,
        "folder": str(folder),
        "images": images[:N_IMAGES],
        "labels": labels[:N_IMAGES],
    }


def _network(cfg, ckpt):
    net = create_model(cfg.model, num_classes=cfg.num_classes)
    ms.load_param_into_net(
        net, {k: v for k, v in ms.load_checkpoint(ckpt).items() if k in {p.name for p in net.get_parameters()}}
    )
    net.set_train(False)
    return net


def test_files_get_the_validation_tensors_and_the_networks_argmax(trained):
    predictor = Predictor(checkpoint_path=trained["ckpt"])  # recipe and class names read from the checkpoint
    assert predictor.cfg.model == "vz_tiny_test" and predictor.cfg.image_resize == 16
    assert predictor.class_names == [str(i) for i in range(10)]
    files = list_images(trained["folder"])
    assert [os.path.basename(f) for f in files] == [f"digit_{i:02d}.png" for i in range(N_IMAGES)]
    # reference: the validation pipeline's own tensors for the same samples, through the network
    val = build_dataset(trained["cfg"].replace(eval_batch_size=N_IMAGES), "val")
    images, labels = next(val.dataset.create_tuple_iterator(num_epochs=1))
    np.testing.assert_array_equal(labels.asnumpy(), trained["labels"])
    for k, f in enumerate(files[:3]):
        np.testing.assert_array_equal(predictor.preprocess(f), images.asnumpy()[k])
    reference = _network(trained["cfg"], trained["ckpt"])(images).asnumpy()
    np.testing.assert_allclose(predictor.logits(trained["folder"]), reference, rtol=1e-5, atol=1e-5)
    results = predictor.predict(trained["folder"], topk=3)
    assert [r.indices[0] for r in results] == reference.argmax(1).tolist()
    assert [r.source for r in results] == files
    for r in results:
        assert len(r.labels) == 3 and r.labels == [str(i) for i in r.indices]
        assert r.probs == sorted(r.probs, reverse=True) and 0 < sum(r.probs) <= 1 + 1e-9
    # the network beats chance on these digits, so the predictions are not all one class
    assert len({r.indices[0] for r in results}) > 1


def test_arrays_pil_and_jpeg_match_a_hand_normalised_reference(trained, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)  # already network-sized: no resize
    Image.fromarray(pixels[2]).save(tmp_path / "x.jpg", quality=100)
    jpeg_pixels = np.asarray(Image.open(tmp_path / "x.jpg").convert("RGB"))
    batch = np.stack([pixels[0], pixels[1], jpeg_pixels]).astype(np.float32)
    batch = ((batch - np.array(DIGITS_MEAN, np.float32)) / np.array(DIGITS_STD, np.float32)).transpose(0, 3, 1, 2)
    logits = _network(trained["cfg"], trained["ckpt"])(ms.Tensor(batch)).asnumpy().astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)

    results = predict(
        [pixels[0], Image.fromarray(pixels[1]), str(tmp_path / "x.jpg")],
        cfg=trained["recipe"],
        checkpoint_path=trained["ckpt"],
        topk=10,
    )
    assert [r.source for r in results] == ["<array 0>", "<array 1>", str(tmp_path / "x.jpg")]
    for r, p in zip(results, expected):
        assert r.indices[0] == int(p.argmax())
        np.testing.assert_allclose(np.array(r.probs), p[r.indices], atol=1e-5)


def test_class_names_beside_the_checkpoint_then_fallback(trained, tmp_path):
    net = _network(trained["cfg"], trained["ckpt"])
    bare = str(tmp_path / "bare.ckpt")
    ms.save_checkpoint(net, bare)  # weights only: no _vz_classes, no stored recipe
    assert Predictor(trained["recipe"], checkpoint_path=bare).class_names == [f"class_{i}" for i in range(10)]
    names = [f"digit {i}" for i in range(10)]
    with open(tmp_path / "classes.json", "w") as f:
        json.dump(names, f)
    p = Predictor(trained["recipe"], checkpoint_path=bare)
    assert p.class_names == names
    assert p.predict(trained["images"][0], topk=1)[0].labels[0] in names


def test_stored_recipe_forgets_the_training_device_and_a_given_network_is_used_as_is(trained, tmp_path):
    net = _network(trained["cfg"], trained["ckpt"])
    moved = str(tmp_path / "from_ascend.ckpt")
    ascend_recipe = trained["cfg"].replace(device_target="Ascend", distribute=True)
    ms.save_checkpoint(net, moved, append_dict={"_vz_config": ascend_recipe.dump_yaml()})
    p = Predictor(checkpoint_path=moved)
    assert p.cfg.device_target == "CPU" and not p.cfg.distribute and p.cfg.image_resize == 16
    assert Predictor(checkpoint_path=moved, device_target="GPU").cfg.device_target == "GPU"
    # an nn.Cell given as model is used without loading anything
    given = Predictor(trained["cfg"], model=net)
    assert given.network is net
    x = trained["images"][:4]
    np.testing.assert_allclose(given.logits(list(x)), p.logits(list(x)), rtol=1e-6, atol=1e-6)


def test_cli_text_and_json(trained):
    args = ["--ckpt_path", trained["ckpt"], "--image_path", trained["folder"], "--topk", "3"]
    text = run_script("tests/tiny_run.py", ["infer.py", *args])
    assert text.returncode == 0, text.stderr
    lines = text.stdout.strip().splitlines()
    assert len(lines) == N_IMAGES and lines[0].startswith(os.path.join(trained["folder"], "digit_00.png") + ": ")
    proc = run_script("tests/tiny_run.py", ["infer.py", "-c", trained["recipe"], *args, "--json"])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert doc["checkpoint"] == trained["ckpt"] and doc["model"] == "vz_tiny_test"
    expected = Predictor(checkpoint_path=trained["ckpt"]).predict(trained["folder"], topk=3)
    assert [p["image"] for p in doc["predictions"]] == [r.source for r in expected]
    for p, r in zip(doc["predictions"], expected):
        assert [t["index"] for t in p["topk"]] == r.indices
        assert [t["class"] for t in p["topk"]] == r.labels
        np.testing.assert_allclose([t["prob"] for t in p["topk"]], r.probs, atol=1e-6)
        assert lines[expected.index(r)].split(": ", 1)[1].split(", ")[0].split(" ")[0] == r.labels[0]


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("missing", "image path not found"),
        ("not_an_image", "not a readable image"),
        ("empty_folder", "no images"),
        ("missing_checkpoint", "checkpoint file not found"),
        ("bare_checkpoint_without_recipe", "stores no recipe"),
    ],
)
def test_bad_inputs_are_one_line_exit_2(trained, tmp_path, case, fragment):
    image, ckpt = trained["folder"], trained["ckpt"]
    if case == "missing":
        image = str(tmp_path / "nope.png")
    elif case == "not_an_image":
        image = str(tmp_path / "notes.png")
        with open(image, "w") as f:
            f.write("not an image\n")
    elif case == "empty_folder":
        image = str(tmp_path / "empty")
        os.makedirs(image)
        with open(os.path.join(image, "readme.txt"), "w") as f:
            f.write("no images here\n")
    elif case == "missing_checkpoint":
        ckpt = str(tmp_path / "nope.ckpt")
    else:
        ckpt = str(tmp_path / "bare.ckpt")
        ms.save_checkpoint(_network(trained["cfg"], trained["ckpt"]), ckpt)  # weights only
    proc = run_script("tests/tiny_run.py", ["infer.py", "--ckpt_path", ckpt, "--image_path", image])
    assert proc.returncode == 2, proc.stderr
    errors = error_lines(proc)
    assert len(errors) == 1 and errors[0].startswith("error: ") and fragment in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_api_errors_name_the_input(trained, tmp_path):
    with pytest.raises(DataError, match="image path not found"):
        list_images(tmp_path / "missing")
    p = Predictor(checkpoint_path=trained["ckpt"])
    with pytest.raises(DataError, match="must be uint8"):
        p.predict(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(DataError, match="shape"):
        p.predict(np.zeros((2, 16, 16, 3), np.uint8))


def test_imagenet_style_recipe_gets_resize_crop_tensors_of_validation(tmp_path):
    """Folder recipes: decode -> resize shorter side to image_resize/crop_pct -> centre crop, as validation does."""
    from visionzoo.config import load_config

    data = str(tmp_path / "data")
    rng = np.random.default_rng(5)
    for cls in ("cat", "dog"):
        os.makedirs(os.path.join(data, "val", cls))
        for i, (w, h) in enumerate([(40, 30), (24, 50)]):  # landscape and portrait
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
                os.path.join(data, "val", cls, f"{i}.png")
            )
    cfg = load_config(
        None,
        {
            "model": "vz_tiny_test",
            "dataset": "imagenet",
            "data_dir": data,
            "num_classes": "2",
            "image_resize": "16",
            "crop_pct": "0.8",
            "batch_size": "4",
            "num_parallel_workers": "1",
        },
    )
    net = create_model("vz_tiny_test", num_classes=2)
    ckpt = str(tmp_path / "tiny_imagenet.ckpt")
    ms.save_checkpoint(net, ckpt)
    predictor = Predictor(cfg, checkpoint_path=ckpt)
    val = build_dataset(cfg, "val")
    images, _ = next(val.dataset.create_tuple_iterator(num_epochs=1))
    files = list_images(os.path.join(data, "val"))
    assert len(files) == 4
    for k, f in enumerate(files):
        np.testing.assert_array_equal(predictor.preprocess(f), images.asnumpy()[k])
    net.set_train(False)
    np.testing.assert_allclose(predictor.logits(files), net(images).asnumpy(), rtol=1e-5, atol=1e-6)
