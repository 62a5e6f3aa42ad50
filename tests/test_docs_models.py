"""docs/models.md is generated from the registry and must be current."""

import functools
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _rendered():
    return _script().render()


def _script():
    spec = importlib.util.spec_from_file_location("gen_model_table", ROOT / "scripts" / "gen_model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_table_is_current():
    expected = _rendered()
    committed = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/models.md is stale: run python scripts/gen_model_table.py"


def test_models_table_lists_every_model_with_its_count():
    text = _rendered()
    assert "| `googlenet` | 6,991,272 |" in text
    assert "| `vgg16` | 138,353,320 |" in text
    assert "| `vgg16_bn_cifar` | 15,231,912 | 14,724,042 | 3x32x32 |" in text


def test_models_table_lists_every_weight_tag_with_source_accuracy_and_preprocessing():
    import visionzoo

    text = _rendered()
    for tagged in visionzoo.list_models(pretrained=True):
        assert f"| `{tagged}` | {visionzoo.get_model_info(tagged).source} |" in text
    assert (
        "| `vgg16_bn.tv_in1k` | torchvision | 73.36 / 91.52 | 138,365,992 | 3x224x224, 0.875, bilinear | "
        "(123.7, 116.3, 103.5) / (58.4, 57.1, 57.4) | `has_bias=True`, `adaptive_pool=True` |"
    ) in text
    assert "| `vgg16.mindcv_in1k` | MindCV | 74.61 / 91.87 |" in text
