"""Registry: listing, lookup errors, duplicate names, recipes scan, entry-point plugins."""

import dataclasses
import sys
import textwrap

import pytest

import visionzoo
from visionzoo import ModelError, create_model, get_model_info, is_model, list_models, register_model
from visionzoo.registry import ModelSpec, get_model_spec


def test_list_models_is_sorted_and_filters_with_wildcards():
    names = list_models()
    assert names == sorted(names)
    assert list_models("vgg16*") == ["vgg16", "vgg16_bn", "vgg16_bn_cifar"]
    assert list_models(["googlenet*", "vgg11"]) == ["googlenet", "googlenet_bn", "googlenet_cifar", "vgg11"]
    assert list_models("vgg*", exclude_filters=["*_bn", "*_cifar"]) == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert list_models("*_cifar", exclude_filters="vgg*") == ["googlenet_cifar"]
    assert list_models("nothing*") == []
    tagged = list_models(pretrained=True)  # name.tag pairs, one per published weight set
    assert tagged == sorted(f"{n}.{w.tag}" for n in names for w in get_model_spec(n).weights)
    assert "vgg16_bn.tv_in1k" in tagged and "googlenet.mindcv_in1k" in tagged
    assert list_models("vgg16", pretrained=True) == ["vgg16.mindcv_in1k", "vgg16.tv_in1k", "vgg16.tv_ssd_features"]
    assert list_models("*.mindcv_in1k_910v2", pretrained=True) == [
        "googlenet.mindcv_in1k_910v2",
        "vgg13.mindcv_in1k_910v2",
        "vgg19.mindcv_in1k_910v2",
    ]


def test_is_model():
    assert is_model("googlenet") and is_model("vgg19_bn_cifar")
    assert not is_model("vgg61")


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError) as err:
        create_model("vgg61")
    message = str(err.value)
    assert message.startswith("Unknown model 'vgg61'. Did you mean: vgg16, ")
    assert message.count(",") == 2  # three suggestions
    with pytest.raises(ModelError, match="Did you mean: googlenet"):
        get_model_info("googlnet")
    with pytest.raises(ModelError, match="list_models"):
        create_model("resnet50")
    assert isinstance(err.value, visionzoo.VisionZooError)


def test_unknown_builder_option_names_the_option():
    with pytest.raises(ModelError, match="aux_logit"):
        create_model("googlenet_cifar", aux_logit=True)


def test_duplicate_registration_is_refused(isolated_registry):
    with pytest.raises(ModelError, match="'googlenet' is already registered"):

        @register_model
        def googlenet(pretrained=False, **kwargs):
            return None

    @register_model(name="my_test_net", spec=ModelSpec(num_params=1, num_features=1))
    def builder(pretrained=False, **kwargs):
        return "built"

    assert create_model("my_test_net") == "built"
    with pytest.raises(ModelError, match="already registered"):
        register_model(builder, name="my_test_net")


def test_model_info_is_frozen_and_typed():
    info = get_model_info("googlenet")
    assert (info.name, info.num_params, info.input_size) == ("googlenet", 6_991_272, (3, 224, 224))
    assert info.classifier == "classifier" and info.first_conv == "conv1.conv"
    assert info.pretrained == ("mindcv_in1k", "mindcv_in1k_910v2")
    assert info.weight is None and info.tag == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_params = 1
    assert get_model_info("vgg16_bn_cifar").num_params_at(10) == 14_724_042


def test_model_info_of_a_tag_reports_its_weights():
    info = get_model_info("vgg16.mindcv_in1k")
    assert (info.name, info.tag, info.source, info.license) == ("vgg16", "mindcv_in1k", "MindCV", "Apache-2.0")
    assert info.url == "https://download.mindspore.cn/toolkits/mindcv/vgg/vgg16-95697531.ckpt"
    assert info.sha256 == "95697531" and (info.top1, info.top5) == (74.61, 91.87)
    assert info.preprocessing == {
        "image_resize": 224,
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "mean": info.mean,
        "std": info.std,
    }
    tv = get_model_info("vgg16_bn.tv_in1k")
    assert (
        tv.source == "torchvision"
        and tv.num_params == 138_365_992
        and tv.weight.model_options == {"has_bias": True, "adaptive_pool": True}
    )
    assert get_model_info("vgg16.tv_ssd_features").std == (1.0, 1.0, 1.0)  # its inputs are 0-255 minus the mean
    assert is_model("vgg16.tv_in1k") and not is_model("vgg16.tv_in22k")
    with pytest.raises(visionzoo.CheckpointError, match="no weights tagged 'nope'.*mindcv_in1k"):
        get_model_info("vgg16.nope")


def test_recipes_are_found_by_model_key(tmp_path, monkeypatch):
    from visionzoo import recipes

    (tmp_path / "configs" / "googlenet").mkdir(parents=True)
    (tmp_path / "configs" / "googlenet" / "googlenet_cifar10_cpu.yaml").write_text("model: googlenet_cifar\nlr: 0.1\n")
    (tmp_path / "configs" / "googlenet" / "grouped.yaml").write_text("model:\n  model: googlenet_cifar\n")
    (tmp_path / "configs" / "googlenet" / "other.yaml").write_text("model: googlenet\n")
    (tmp_path / "configs" / "broken.yaml").write_text("model: [unclosed\n")
    monkeypatch.setattr(recipes, "recipes_dir", lambda: tmp_path / "configs")
    assert get_model_info("googlenet_cifar").recipes == ("googlenet_cifar10_cpu", "grouped")
    assert get_model_info("googlenet").recipes == ("other",)
    assert get_model_info("vgg16").recipes == ()


def test_recipes_come_from_the_package_whatever_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: an installed wheel's situation
    assert get_model_info("vgg11_bn_cifar").recipes == ("vgg11_bn_cifar_digits_cpu",)
    assert "vgg11_bn_cifar_digits_cpu" in visionzoo.list_recipes("vgg11*")


def _write_plugin(root, package, dist, body, entry):
    (root / package).mkdir()
    (root / package / "__init__.py").write_text(textwrap.dedent(body))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[visionzoo.models]\n{entry}\n")


def test_plugin_models_load_lazily_from_entry_points(tmp_path, monkeypatch, isolated_registry):
    _write_plugin(
        tmp_path,
        "myplugin",
        "myplugin",
        """
        from visionzoo import register_model
        from visionzoo.registry import ModelSpec

        model_specs = {"plugin_net": ModelSpec(num_params=7, num_features=3, flavour="test", source="myplugin")}

        @register_model
        def plugin_net(pretrained=False, num_classes=1000, in_channels=3, **kwargs):
            return ("plugin_net", num_classes, kwargs)

        def second_net(pretrained=False, num_classes=1000, **kwargs):
            return ("second_net", num_classes)
        """,
        "plugin_net = myplugin\nsecond = myplugin:second_net",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myplugin", raising=False)
    assert "plugin_net" not in isolated_registry._MODELS  # nothing loaded before a miss or a listing
    assert create_model("plugin_net", num_classes=3, depth=2) == ("plugin_net", 3, {"depth": 2})
    assert get_model_info("plugin_net").num_params == 7
    assert get_model_info("plugin_net").source == "myplugin"
    assert create_model("second", num_classes=4) == ("second_net", 4)  # a builder entry point: its own name
    assert {"plugin_net", "second"} <= set(list_models())


def test_broken_plugin_warns_and_does_not_break_the_zoo(tmp_path, monkeypatch, isolated_registry):
    _write_plugin(
        tmp_path,
        "brokenplugin",
        "brokenplugin",
        "raise ImportError('missing dependency xyz')\n",
        "broken_net = brokenplugin",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="broken_net = brokenplugin.*brokenplugin.*missing dependency xyz"):
        names = list_models()
    assert "googlenet" in names and "broken_net" not in names
    with pytest.raises(ModelError, match="Unknown model 'broken_net'"):
        create_model("broken_net")


def test_plugin_registering_a_taken_name_is_skipped_with_a_warning(tmp_path, monkeypatch, isolated_registry):
    _write_plugin(
        tmp_path,
        "clashplugin",
        "clashplugin",
        """
        from visionzoo import register_model

        @register_model
        def vgg16(pretrained=False, **kwargs):
            return None
        """,
        "clash = clashplugin",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="clashplugin.*already registered"):
        assert not is_model("clash")
    assert get_model_spec("vgg16").module == "visionzoo.models.vgg"
