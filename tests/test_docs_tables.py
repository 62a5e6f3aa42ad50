"""Every generated table in the docs matches the committed result files it names, and every result
file a doc names exists (benchmarks/summarize_results.py)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = "run: python benchmarks/summarize_results.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("summarize_results", ROOT / "benchmarks" / "summarize_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


summarize = _load_script()


def test_every_generated_table_is_current():
    assert summarize.stale() == [], f"generated tables differ from benchmarks/results/; {FIX}"


def test_every_kind_is_used_by_a_doc():
    used = {t.split()[0].removeprefix("table:") for p in summarize.documents() for t in summarize.tables(p.read_text())}
    assert used == set(summarize.KINDS), "a table kind no doc shows, or a doc marker of an unknown kind"


def test_performance_page_is_a_short_reference_page():
    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert len(summarize.tables(text)) >= 5


_RESULT_REF = re.compile(r"benchmarks/results/([\w.{},*<>-]+[\w}*>])")


def _expand(name):
    """``a_{x,y}.{json,log}`` -> every combination, as the docs abbreviate sibling files; ``<date>`` -> ``*``."""
    name = re.sub(r"(<[^>]*>|\*)+", "*", name)
    match = re.search(r"\{([^{}]*)\}", name)
    if not match:
        return [name]
    return [n for alt in match[1].split(",") for n in _expand(name[: match.start()] + alt + name[match.end() :])]


def test_every_result_file_named_in_the_docs_exists():
    missing = []
    for path in summarize.documents():
        for ref in _RESULT_REF.findall(path.read_text(encoding="utf-8")):
            for name in _expand(ref):
                if "*" in name:
                    found = list((ROOT / "benchmarks" / "results").glob(name))
                else:
                    found = (ROOT / "benchmarks" / "results" / name).exists()
                if not found and name != "LOG.md":
                    missing.append(f"{path.relative_to(ROOT)}: benchmarks/results/{name}")
    assert missing == []


def test_models_row_is_computed_from_the_step_times(tmp_path, monkeypatch):
    step = {"batch": 10, "train_cpu": [1.0], "peak_rss_mb": 100.0}
    vz = dict(step, train=[0.5, 0.4, 0.6], infer=[0.1], train_rounds=[0.4, 0.6], infer_rounds=[0.1], fast_isa="X")
    pt = dict(step, train=[1.0], infer=[0.3], train_rounds=[1.0], infer_rounds=[0.3], cpu_capability="Y")
    data = {"meta": {"isa_class": "native", "load_before": 1.0}, "results": {"m": {"visionzoo": vz, "torch": pt}}}
    (tmp_path / "r.json").write_text(json.dumps(data))
    monkeypatch.setattr(summarize, "RESULTS", tmp_path)
    row = summarize.render("models", ["r.json"]).splitlines()[2]
    # speed-up = PyTorch's median step / visionzoo's: 1.0 / 0.5 training, 0.3 / 0.1 inference
    assert row.startswith(
        "| m | 10 | native | X / Y | 20.0 (40%) | 10.0 (-) | **2.00x** | 100.0 (-) | 33.3 (-) | **3.00x** |"
    )


def test_stale_table_is_reported_with_the_fixing_command(tmp_path, monkeypatch):
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    rows = [{"mode": "graph", "model": "m", "batch": 1, "size": 8, "fused_s": 1.0, "unfused_s": 2.0, "calls_each": 3}]
    (results / "f.json").write_text(json.dumps({"host": {"cpu": "c", "cpus": 2, "date": "d"}, "rows": rows}))
    doc = tmp_path / "docs" / "x.md"
    doc.parent.mkdir()
    doc.write_text("a\n<!-- table:fusion f.json -->\n| old |\n<!-- /table:fusion -->\nb\n")
    monkeypatch.setattr(summarize, "ROOT", tmp_path)
    monkeypatch.setattr(summarize, "RESULTS", results)
    assert summarize.stale() == ["docs/x.md: table:fusion f.json"]
    assert summarize.main(["--check"]) == 1
    assert summarize.main([]) == 0
    assert summarize.stale() == []
    text = doc.read_text()
    assert "| graph | m | 1 | 8 | 1.000 | 2.000 | **2.00x** | 3 |" in text and text.endswith("-->\nb\n")


@pytest.mark.parametrize(
    "marker, message",
    [
        ("<!-- table:nosuch f.json -->\n<!-- /table:nosuch -->", "unknown table kind 'nosuch'; known: "),
        ("<!-- table:fusion gone.json -->\n<!-- /table:fusion -->", "benchmarks/results/gone.json does not exist"),
        ("<!-- table:models f.json -->\n<!-- /table:models -->", "f.json: not a bench_models.py --json file"),
    ],
)
def test_bad_marker_is_one_clear_error(tmp_path, monkeypatch, marker, message):
    (tmp_path / "f.json").write_text(json.dumps({"rows": []}))
    monkeypatch.setattr(summarize, "RESULTS", tmp_path)
    with pytest.raises(summarize.TableError, match=re.escape(message)):
        summarize.fill(marker)
