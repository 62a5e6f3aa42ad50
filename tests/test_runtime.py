"""visionzoo.runtime: CPU environment defaults applied on import, in real subprocesses."""

import json
import os
import subprocess
import sys

import pytest

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
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "VISIONZOO_NO_CPU_DEFAULTS")}
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


# CPU flags as /proc/cpuinfo spells them, for the two x86 host classes (and an AMX Xeon's extras).
AVX2_HOST = frozenset({"sse4_1", "avx", "avx2", "fma"})
AVX512_HOST = AVX2_HOST | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "amx_tile", "amx_bf16"}


def test_isa_choice_on_an_avx512_host():
    """AVX-512 host: MindSpore's oneDNN is capped at AVX2 (its plain-NCHW Conv2D must not reach the
    reference kernel) while the fast path's private oneDNN runs AVX512_CORE (AMX/VNNI do not serve fp32)."""
    from visionzoo import runtime

    assert runtime.choose_isa(AVX512_HOST, {}, machine="x86_64") == ("AVX2", "AVX512_CORE", "auto")


def test_isa_choice_on_an_avx2_host():
    from visionzoo import runtime

    assert runtime.choose_isa(AVX2_HOST, {}, machine="x86_64") == ("AVX2", "AVX2", "auto")
    assert runtime.choose_isa(frozenset({"sse4_1"}), {}, machine="x86_64").fast == "SSE41"
    assert runtime.choose_isa(frozenset(), {}, machine="x86_64").fast is None  # unknown: oneDNN decides


def test_isa_choice_respects_a_user_setting_and_the_opt_out():
    from visionzoo import runtime

    # a user-set ONEDNN_MAX_CPU_ISA reaches both oneDNN instances untouched
    assert runtime.choose_isa(AVX512_HOST, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, machine="x86_64") == (None, None, "user")
    assert runtime.choose_isa(AVX512_HOST, {"VISIONZOO_NO_CPU_DEFAULTS": "1"}, machine="x86_64") == (
        None,
        "AVX512_CORE",
        "off",
    )
    assert runtime.choose_isa(AVX512_HOST, {}, machine="aarch64") == (None, None, "other-arch")


def test_cpu_flags_reader(tmp_path):
    from visionzoo import runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse4_1 avx2 fma avx512f\n\nprocessor\t: 1\nflags\t\t: x\n")
    assert runtime.cpu_flags(str(cpuinfo)) == {"fpu", "sse4_1", "avx2", "fma", "avx512f"}
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


# Builds two fast convolutions and reports, from inside that process, the kernels' oneDNN ISA and the
# variable MindSpore's oneDNN reads.
_ISA_PROBE = """
import json, logging, os
logging.basicConfig(level=logging.INFO)
import visionzoo, ctypes
from visionzoo import runtime
from visionzoo.ops import conv
runtime.use_fast_conv(True)
layers = [conv.Conv2d(3, 4, 3), conv.Conv2d(4, 4, 1)]
lib = ctypes.CDLL(conv.build_conv_kernels())
print(json.dumps({"fast": conv.effective_isa(lib), "standard": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                  "best": runtime.best_fp32_isa(runtime.cpu_flags()), "all_fast": all(l.fast for l in layers)}))
"""


def _isa_probe(**env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "VISIONZOO_NO_CPU_DEFAULTS")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_changes)
    proc = subprocess.run([sys.executable, "-c", _ISA_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.cpu_only("runs visionzoo's CPU convolution kernels")
def test_fast_kernels_run_at_the_hosts_best_isa_and_log_it_once():
    """End to end on this host: the private oneDNN dispatches at the best fp32 level of the CPU while
    MindSpore's keeps the AVX2 cap; the choice is logged once, at info level."""
    report, log = _isa_probe()
    assert report["all_fast"]
    assert report["fast"] == report["best"]
    assert report["standard"] == "AVX2"
    assert log.count("INFO:visionzoo.ops.conv:visionzoo fast convolution: oneDNN ISA") == 1


@pytest.mark.cpu_only("runs visionzoo's CPU convolution kernels")
def test_fast_kernels_follow_a_user_set_isa():
    report, log = _isa_probe(ONEDNN_MAX_CPU_ISA="AVX2")
    assert report["fast"] == "AVX2" and report["standard"] == "AVX2"
    assert "set by the user" in log


def test_the_fast_paths_follow_the_device_a_model_is_built_for_not_the_global_context():
    import mindspore as ms

    import visionzoo
    from visionzoo import runtime
    from visionzoo.errors import DeviceError
    from visionzoo.ops import Conv2d, MaxPool2d

    def fast_layers(net):
        return sum(c.fast for _, c in net.cells_and_names() if isinstance(c, (Conv2d, MaxPool2d)))

    assert ms.get_context("device_target") == "CPU"
    for device in ("Ascend", "GPU", "gpu"):
        net = visionzoo.create_model("vgg11_bn_cifar", num_classes=10, device=device)
        assert fast_layers(net) == 0  # standard ops for an accelerator, though the context says CPU
    net = visionzoo.create_model("vgg11_bn_cifar", num_classes=10, device="CPU")
    assert fast_layers(net) == 8 + 5  # 8 convolutions and 5 max pools
    with runtime.building_for("Ascend"):  # an outer choice holds inside a call that names no device
        assert fast_layers(visionzoo.create_model("vgg11_bn_cifar", num_classes=10)) == 0
    with pytest.raises(DeviceError, match=r"device 'TPU' is not one of Ascend, GPU, CPU"):
        visionzoo.create_model("vgg11_bn_cifar", device="TPU")


def test_the_trainer_builds_its_network_for_the_runs_device():
    from visionzoo.config import Config
    from visionzoo.engine.build import build_network
    from visionzoo.ops import Conv2d

    cfg = Config().replace(model="vgg11_bn_cifar", num_classes=10, device_target="GPU")
    net = build_network(cfg)
    convs = [c for _, c in net.cells_and_names() if isinstance(c, Conv2d)]
    assert len(convs) == 8 and not any(c.fast for c in convs)
    assert all(
        c.fast for _, c in build_network(cfg.replace(device_target="CPU")).cells_and_names() if isinstance(c, Conv2d)
    )
