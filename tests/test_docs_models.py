"""docs/models.md is generated from the registry and must be current."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("gen_model_table", ROOT / "scripts" / "gen_model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_table_is_current():
    expected = _script().render()
    committed = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    assert committed == expected, "docs/models.md is stale: run python scripts/gen_model_table.py"


def test_models_table_lists_every_model_with_its_count():
    text = _script().render()
    assert "| `googlenet` | 6,991,272 |" in text
    assert "| `vgg16` | 138,353,320 |" in text
    assert "| `vgg16_bn_cifar` | 15,231,912 | 14,724,042 | 3x32x32 |" in text
