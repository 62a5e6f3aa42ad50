"""MindCV training keys visionzoo now honours (issue #15): ema, top_k, mixup/cutmix, random erasing,
eval_shuffle, val_amp_level, resume_opt, and the refusals and guard rails (tiny model, digits, seconds)."""

import json
import math
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

import tiny_model  # registers vz_tiny_test
from script_utils import REPO, script_env
from test_trainer import read_metrics, tiny_cfg
from visionzoo.checkpoint import keep_top_k, top_k_epochs
from visionzoo.config import load_config
from visionzoo.data.mixup import BatchMixer
from visionzoo.engine.ema import EMA, EMA_WARMUP_UPDATES, ema_weights_of
from visionzoo.engine.trainer import Trainer
from visionzoo.errors import ConfigError, TrainingDiverged

FAST = dict(epoch_size=2, num_samples=96, warmup_epochs=0, decay_epochs=2)


def test_ema_equals_a_hand_computation_and_is_validated_and_saved(tmp_path):
    cfg = tiny_cfg(tmp_path, ema=True, ema_decay=0.99, val_while_train=True, **FAST)
    trainer = Trainer(cfg).setup()
    names = [p.name for p in trainer.network.get_parameters()]
    expected = {p.name: p.asnumpy().astype(np.float64) for p in trainer.network.get_parameters()}
    # the same updates by hand, step by step, over the real training loop
    steps = []

    class Recording:  # the train step (the EMA updates inside it), noting the weights each update averages in
        def __init__(self, step):
            self.step = step

        def __call__(self, *batch):
            out = self.step(*batch)
            steps.append({p.name: p.asnumpy().astype(np.float64) for p in trainer.network.get_parameters()})
            return out

    trainer.accounted_step = Recording(trainer.accounted_step)
    result = trainer.fit()
    for k, weights in enumerate(steps, start=1):
        d = 0.99 * (1 - math.exp(-k / EMA_WARMUP_UPDATES))
        for n in names:
            expected[n] = d * expected[n] + (1 - d) * weights[n]
    averages = {p.name[len("ema.") :]: p.asnumpy() for p in trainer.ema.averages}
    for n in names:
        np.testing.assert_allclose(averages[n], expected[n], rtol=1e-4, atol=1e-6, err_msg=n)
    assert float(trainer.ema.updates.asnumpy()) == len(steps) == 2 * 3
    # the checkpoint holds both; validate.py's loader scores the averages
    saved = ms.load_checkpoint(result["checkpoint"])
    online = {p.name: p.asnumpy() for p in trainer.network.get_parameters()}
    for n in names:
        np.testing.assert_array_equal(saved[n].asnumpy(), online[n])
        np.testing.assert_array_equal(ema_weights_of(saved)[n].asnumpy(), averages[n])
    from visionzoo.tasks.validate import load_for_eval

    net = load_for_eval(cfg, result["checkpoint"])
    for p in net.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), averages[p.name])
    # validation during training used the averages: rescoring them gives the logged top-1
    from visionzoo.data import build_dataset
    from visionzoo.engine.evaluate import evaluate

    score = evaluate(net, build_dataset(cfg, "val").dataset, 10)
    logged = read_metrics(cfg.ckpt_save_dir)[-1]
    assert (score["top1"], score["loss"]) == pytest.approx((logged["val_top1"], logged["val_loss"]), rel=1e-5)
    online_loss = evaluate(trainer.network, build_dataset(cfg, "val").dataset, 10)["loss"]
    assert abs(online_loss - score["loss"]) > 1e-6  # the online weights score differently


def test_ema_swap_restores_the_online_weights():
    from mindspore import nn

    net = nn.Dense(3, 2)
    ema = EMA(net, 0.5)
    before = net.weight.asnumpy().copy()
    ema.averages[0].set_data(ms.Tensor(np.zeros_like(before)))
    with ema.swapped():
        assert not net.weight.asnumpy().any()
    np.testing.assert_array_equal(net.weight.asnumpy(), before)


def test_top_k_keeps_the_best_by_validation_top1(tmp_path):
    d = tmp_path
    for e in range(1, 7):
        (d / f"m-e{e:04d}.ckpt").write_bytes(b"x")
    # not epoch checkpoints of m: the one name parser of checkpoint/store.py leaves them alone
    others = ["m-best.ckpt", "m-e0007-s0003.ckpt", "m-x-e0001.ckpt", "n-e0001.ckpt"]
    for name in others:
        (d / name).write_bytes(b"x")
    scores = {1: 0.5, 2: 0.9, 3: 0.7, 4: 0.9, 5: 0.1, 6: 0.2}
    assert top_k_epochs(scores, 3) == [2, 4, 3]  # ties: the earlier epoch first
    keep_top_k(str(d), "m", 2, scores)
    assert sorted(os.listdir(d)) == sorted(["m-e0002.ckpt", "m-e0004.ckpt", "m-e0006.ckpt", *others])  # best 2 + newest


def test_top_k_in_training_and_its_refusal(tmp_path):
    cfg = tiny_cfg(
        tmp_path, ckpt_save_policy="top_k", keep_checkpoint_max=1, val_while_train=True, **dict(FAST, epoch_size=3)
    )
    Trainer(cfg).fit()
    records = read_metrics(cfg.ckpt_save_dir)
    best = max(records, key=lambda r: (r["val_top1"], -r["epoch"]))["epoch"]
    kept = sorted(f for f in os.listdir(cfg.ckpt_save_dir) if "-e0" in f)
    assert kept == sorted({f"vz_tiny_test-e{best:04d}.ckpt", "vz_tiny_test-e0003.ckpt"})
    with pytest.raises(ConfigError, match="top_k ranks checkpoints by validation top-1"):
        tiny_cfg(tmp_path, ckpt_save_policy="top_k")


def _batch(n=4, c=3, h=8, w=8):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, c, h, w)).astype(np.float32), np.array([0, 1, 2, 3], np.int32)


def _mixed(kind, num_classes, **options):
    """A fixed batch, its mixed images and labels, and the mixing weight; asserts the kind that ran."""
    x, y = _batch()
    mixer = BatchMixer(num_classes, **options)
    out_x, out_y = mixer(x, y)
    ran, lam = mixer.last
    assert ran == kind
    return x, y, out_x, out_y, lam


def test_mixup_mixes_images_and_labels_exactly():
    x, y, out_x, out_y, lam = _mixed("mixup", 5, mixup_alpha=0.4, seed=3)
    np.testing.assert_allclose(out_x, lam * x + (1 - lam) * x[::-1], rtol=1e-6)
    expected = np.zeros((4, 5), np.float32)
    for i in range(4):
        expected[i, y[i]] += lam
        expected[i, y[3 - i]] += 1 - lam
    np.testing.assert_allclose(out_y, expected, rtol=1e-6)
    np.testing.assert_allclose(out_y.sum(1), 1.0, rtol=1e-6)


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area():
    x, _, out_x, out_y, lam = _mixed("cutmix", 4, cutmix_alpha=1.0, seed=5)
    pasted = ~np.isclose(out_x, x)  # where the reversed batch was pasted (random data: no equal pixels)
    area = pasted[0, 0].sum()
    assert 0 < area < 64
    assert lam == pytest.approx(1 - area / 64)
    np.testing.assert_array_equal(out_x[pasted], x[::-1][pasted])
    np.testing.assert_allclose(out_y[0], [lam, 0, 0, 1 - lam], rtol=1e-6)


def test_mix_probability_switch_and_off():
    x, y = _batch()
    never = BatchMixer(4, mixup_alpha=1.0, prob=0.0)
    out_x, out_y = never(x, y)
    np.testing.assert_array_equal(out_x, x)
    np.testing.assert_array_equal(out_y, np.eye(4, dtype=np.float32))  # one-hot float labels
    both = BatchMixer(4, mixup_alpha=1.0, cutmix_alpha=1.0, seed=0)
    kinds = {both(x, y) and both.last[0] for _ in range(40)}
    assert kinds == {"mixup", "cutmix"}
    both.active = False
    both(x, y)
    assert both.last[0] == "none"


def test_label_smoothing_applies_to_mixed_targets():
    """MindCV: Mixup with label_smoothing 0, then CE with smoothing on the soft targets."""
    from visionzoo.engine.loss import build_loss

    logits = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    target = np.array([[0.7, 0.3, 0, 0], [0, 0, 0.3, 0.7]], np.float32)
    loss = build_loss(load_config(None, {"label_smoothing": 0.1}))(ms.Tensor(logits), ms.Tensor(target))
    smoothed = target * 0.9 + 0.1 / 4
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert float(loss.asnumpy()) == pytest.approx(float(-(smoothed * logp).sum(1).mean()), rel=1e-5)


def test_training_with_mixup_cutmix_and_off_epoch(tmp_path):
    cfg = tiny_cfg(tmp_path, mixup=0.8, cutmix=1.0, label_smoothing=0.1, mixup_off_epoch=2, **FAST)
    trainer = Trainer(cfg).setup()
    bundle = trainer.train_data
    bundle.set_epoch(0)
    images, labels = next(bundle.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert labels.dtype == np.float32 and labels.shape == (32, 10)
    assert bundle.mixer.active
    assert not set(np.unique(labels)) <= {0.0, 1.0}  # mixed: soft labels
    bundle.set_epoch(1)  # epoch 2 (1-based) = mixup_off_epoch: no more mixing
    assert not bundle.mixer.active
    _, labels = next(bundle.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert set(np.unique(labels)) == {0.0, 1.0} and (labels.sum(1) == 1).all()  # plain one-hot
    record = trainer.fit()
    assert math.isfinite(read_metrics(cfg.ckpt_save_dir)[-1]["train_loss"]) and record["checkpoint"]


def test_random_erasing_is_reproducible_unlike_mindcvs(tmp_path):
    """MindCV's RandomErasing (Python's global random, 2 worker threads) differs run to run; ours does not,
    and it erases with MindSpore's algorithm: boxes of the configured area range filled with re_value."""
    from test_mindcv_fidelity import _folder, _mindcv_batches, _recipe, _visionzoo_batches

    cfg = _recipe(_folder(tmp_path), re_prob=1.0, re_value="0", color_jitter=0.0)
    ours = [_visionzoo_batches(cfg, "train") for _ in range(2)]
    for (x, _), (x2, _) in zip(*ours):
        np.testing.assert_array_equal(x, x2)
    plain = _visionzoo_batches(load_config(None, dict(cfg.to_dict(), re_prob=0.0)), "train")
    for (x, _), (p, _) in zip(ours[0], plain):
        erased = (x != p).any(axis=1)  # N x H x W
        for k in range(x.shape[0]):
            area = erased[k].mean()
            assert 0.0 < area <= 0.33 + 1e-6 and (x[k][:, erased[k]] == 0).all()
    ref = [_mindcv_batches(cfg, "train")[0] for _ in range(3)]
    assert any(not np.array_equal(a[0], b[0]) for r1, r2 in zip(ref, ref[1:]) for a, b in zip(r1, r2))


def test_eval_shuffle_reorders_but_scores_the_same(tmp_path):
    from visionzoo.data import build_dataset

    plain = build_dataset(tiny_cfg(tmp_path), "val")
    shuffled = build_dataset(tiny_cfg(tmp_path, eval_shuffle=True), "val")
    a = np.concatenate([b[1] for b in plain.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    b = np.concatenate([b[1] for b in shuffled.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    assert a.tolist() != b.tolist() and sorted(a.tolist()) == sorted(b.tolist())


def test_val_amp_level_during_training_uses_a_network_at_that_level(tmp_path):
    cfg = tiny_cfg(tmp_path, val_while_train=True, val_amp_level="O2", **dict(FAST, epoch_size=1))
    trainer = Trainer(cfg).setup()
    assert trainer.eval_network is not None
    result = trainer._validate()
    assert 0.0 <= result["top1"] <= 1.0
    same = Trainer(tiny_cfg(tmp_path, val_while_train=True, **dict(FAST, epoch_size=1))).setup()
    assert same.eval_network is None


def test_resume_opt_restores_optimizer_state_from_ckpt_path(tmp_path):
    first = tiny_cfg(tmp_path / "a", **dict(FAST, epoch_size=1))
    path = Trainer(first).fit()["checkpoint"]
    cont = Trainer(tiny_cfg(tmp_path / "b", ckpt_path=path, resume_opt=True, **FAST))
    cont.fit()
    assert [r["epoch"] for r in read_metrics(cont.cfg.ckpt_save_dir)] == [2]  # continued at epoch 2
    assert int(cont.optimizer.global_step.asnumpy().reshape(-1)[0]) == 2 * 3
    with pytest.raises(ConfigError, match="resume_opt True restores optimizer state from ckpt_path"):
        tiny_cfg(tmp_path, resume_opt=True)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("aug_repeats", 3, "aug_repeats 3: repeated augmentation"),
        ("aug_splits", 3, "aug_splits 3: augmentation splits"),
        ("mixup_off_epoch", 2, "mixup_off_epoch is set but mixup and cutmix are 0"),
    ],
)
def test_unsupported_values_are_refused_with_their_reason(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        tiny_cfg(tmp_path, **{key: value})


def test_a_run_stuck_at_chance_loss_stops_with_likely_causes(tmp_path):
    # nothing moves: the loss stays at ln(10); 50 steps of 2 images, the guard's shortest epoch
    cfg = tiny_cfg(tmp_path, lr=0.0, **dict(FAST, epoch_size=1, num_samples=100, batch_size=2))
    trainer = Trainer(cfg).setup()
    for p in trainer.network.trainable_params():  # uniform logits from the start
        p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    with pytest.raises(TrainingDiverged, match=r"stayed at ln\(num_classes\) = 2.3026.*lr.*labels.*normalised"):
        trainer.fit()


def test_a_short_epoch_at_chance_is_not_judged(tmp_path):
    """Below STUCK_MIN_STEPS steps (here 6) an epoch at chance loss is normal for a fresh model: no stop."""
    from visionzoo.engine import trainer as trainer_module

    cfg = tiny_cfg(tmp_path, lr=0.0, **dict(FAST, epoch_size=1))
    trainer = Trainer(cfg).setup()
    assert trainer.steps_per_epoch < trainer_module.STUCK_MIN_STEPS
    for p in trainer.network.trainable_params():
        p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    assert abs(trainer.fit()["train_loss"] - np.log(10)) < 1e-4


def test_validate_results_file_json_and_csv(tmp_path):
    from visionzoo.tasks.validate import RESULT_FIELDS, write_results

    cfg = tiny_cfg(tmp_path)
    result = {"top1": 0.5, "top5": 0.9, "loss": 1.2, "num_samples": 10, "checkpoint": "x.ckpt"}
    write_results(str(tmp_path / "r.json"), result, cfg, "recipe.yaml")
    saved = json.load(open(tmp_path / "r.json"))
    assert saved["top1"] == 0.5 and saved["model"] == "vz_tiny_test" and saved["recipe"] == "recipe.yaml"
    for _ in range(2):
        write_results(str(tmp_path / "r.csv"), result, cfg, "recipe.yaml")
    lines = open(tmp_path / "r.csv").read().splitlines()
    assert lines[0].split(",") == list(RESULT_FIELDS) and len(lines) == 3


def test_validate_cli_writes_results_file(tmp_path):
    cfg = tiny_cfg(tmp_path, **dict(FAST, epoch_size=1))
    ckpt = Trainer(cfg).fit()["checkpoint"]
    args = [sys.executable, os.path.join(REPO, "validate.py"), "--model", "vz_tiny_test"]
    values = dict(
        dataset="digits",
        num_classes=10,
        image_resize=16,
        device_target="CPU",
        ckpt_path=ckpt,
        results_file=str(tmp_path / "out.json"),
    )
    for k, v in values.items():
        args += [f"--{k}", str(v)]
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tests", "tiny_run.py")] + args[1:],
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.load(open(tmp_path / "out.json"))
    assert saved["top1"] == pytest.approx(json.loads(proc.stdout.strip().splitlines()[-1])["top1"])


@pytest.mark.parametrize(
    "key,value,message",
    [
        (
            "drop_path_rate",
            "0.1",
            "key 'drop_path_rate' got 0.1: model 'googlenet' has no drop path (stochastic depth), so it would do "
            "nothing; set drop_path_rate 0 or remove the key (drop_rate sets the classifier's dropout)",
        ),
        (
            "cycle_decay",
            "0.5",
            "key 'cycle_decay' got 0.5: it scales the lr peak of each cosine cycle after the first, and visionzoo "
            "runs one cycle (num_cycles 1), so it would do nothing; set cycle_decay 1 or remove the key",
        ),
        (
            "amp_cast_list",
            "[nn.Dense]",
            "key 'amp_cast_list' got '[nn.Dense]': casting a list of cells to float16 is not implemented in "
            "visionzoo; remove the key; amp_level (O1/O2/O3) decides what runs in float16",
        ),
    ],
)
def test_mindcv_keys_nothing_would_honour_are_refused_in_one_line(key, value, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, {"model": "googlenet", key: value})
    assert str(e.value) == message


def test_the_neutral_values_mindcvs_recipes_carry_load(tmp_path):
    # the values of these keys in MindCV's configs/**.yaml: drop_path_rate 0.0, cycle_decay 1 / 1.0, num_cycles 1
    for text in ("drop_path_rate: 0.0\ncycle_decay: 1.0\nnum_cycles: 1\n", "cycle_decay: 1\namp_cast_list: null\n"):
        path = tmp_path / "mindcv.yaml"
        path.write_text("model: vgg16\n" + text)
        cfg = load_config(str(path))
        assert cfg.cycle_decay == 1.0 and not cfg.drop_path_rate and cfg.amp_cast_list is None


def test_drop_path_rate_reaches_a_model_that_takes_it(isolated_registry):
    from visionzoo.engine.build import build_network

    seen = []

    @isolated_registry.register_model(name="vz_tiny_drop_path")
    def vz_tiny_drop_path(num_classes=10, in_channels=3, drop_path_rate=0.0):
        seen.append(drop_path_rate)
        return tiny_model.TinyNet(num_classes, in_channels)

    build_network(load_config(None, {"model": "vz_tiny_drop_path", "num_classes": "10", "drop_path_rate": "0.2"}))
    build_network(load_config(None, {"model": "vz_tiny_drop_path", "num_classes": "10"}))
    assert seen == [0.2, 0.0]
