"""visionzoo.runtime: CPU environment defaults applied on import, in real subprocesses."""
import json
import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

# Imports visionzoo and reports, from inside that process, the variables and what runtime applied.
_PROBE = """
import json, os, logging
logging.basicConfig(level=logging.DEBUG)
import visionzoo
from visionzoo import runtime
print(json.dumps({"isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "applied": runtime._applied}))
"""


def _probe(**env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("ONEDNN_MAX_CPU_ISA", "VISIONZOO_NO_CPU_DEFAULTS")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_changes)
    proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_import_sets_fast_onednn_isa():
    report, log = _probe()
    assert report["isa"] == "AVX2"
    assert report["applied"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert log.count("visionzoo CPU defaults applied") == 1  # logged once, at debug level
    assert "DEBUG:visionzoo.runtime" in log


def test_user_value_is_kept():
    report, log = _probe(ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    assert report["isa"] == "AVX512_CORE"
    assert report["applied"] == {}
    assert "keeping user-set ONEDNN_MAX_CPU_ISA=AVX512_CORE" in log


def test_opt_out_leaves_environment_untouched():
    report, _ = _probe(VISIONZOO_NO_CPU_DEFAULTS="1")
    assert report["isa"] is None
    assert report["applied"] == {}


def test_apply_cpu_defaults_on_a_mapping():
    from visionzoo import runtime

    env = {}
    assert runtime.apply_cpu_defaults(env) == runtime.CPU_ENV_DEFAULTS
    assert env == runtime.CPU_ENV_DEFAULTS
    env = {"ONEDNN_MAX_CPU_ISA": "SSE41"}
    assert runtime.apply_cpu_defaults(env) == {}
    assert env == {"ONEDNN_MAX_CPU_ISA": "SSE41"}
