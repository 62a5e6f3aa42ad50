"""Training and inference throughput: visionzoo vs plain MindSpore vs PyTorch eager vs MindCV, on CPU.

Every variant runs in its own worker process (the oneDNN environment must be fixed before MindSpore's
first operation, and PyTorch must not share a process with it). The workers are started together and
driven in turns, A B C D A B C D ..., so that slow drifts of the machine hit every variant alike.

Variants:
  visionzoo  visionzoo's trainer: the train step cell ``Trainer`` compiles (its optimizer, LR table and loss
             scale state) on a model from visionzoo.create_model(...) with visionzoo's defaults (fast CPU
             path), MindSpore graph mode
  standard   visionzoo's trainer and model with the fast ops off (VISIONZOO_FAST_CONV=0, VISIONZOO_FAST_POOL=0)
             but visionzoo's oneDNN cap: MindSpore's standard Conv2D at its best setting on this host, and
             the baseline for the fast path's memory cost (peak RSS)
  plain      the same visionzoo architecture under plain MindSpore defaults: no ONEDNN_MAX_CPU_ISA,
             VISIONZOO_NO_CPU_DEFAULTS=1, VISIONZOO_FAST_POOL=0, VISIONZOO_FAST_CONV=0 (standard
             nn.MaxPool2d and nn.Conv2d), the plain TrainOneStepCell loop
  torch      PyTorch eager on the identical architecture (defined below)
  mindcv     mindcv.create_model(...) under plain MindSpore defaults, where MindCV has the model

ISA classes (``--isa-class``): ``native`` (default) lets each library use the host's best ISA, as a user
gets it; ``avx2`` measures the AVX2 host class on an AVX-512 machine: visionzoo and PyTorch both with
``ONEDNN_MAX_CPU_ISA=AVX2`` (visionzoo's fast kernels honour a user-set cap) and PyTorch with
``ATEN_CPU_CAPABILITY=avx2``. The visionzoo worker runs with ``VISIONZOO_FAST_OPS=require``: a fallback to
the standard ops would measure the wrong thing, so it fails instead.

Usage (from the repository root):
  PYTHONPATH=src python benchmarks/bench_models.py                      # everything, default steps
  PYTHONPATH=src python benchmarks/bench_models.py --models googlenet --variants visionzoo,torch \
      --rounds 3 --steps 3 --json out.json

The step is forward + cross-entropy + backward + SGD-momentum update; inference is a forward pass in
eval mode. Reported: median seconds per step over all timed steps, images/s, ratios against
``visionzoo``, compile time (the first training step, graph compilation included) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# model -> (input size, default batch, classes, MindCV model name or None)
MODELS = {
    "googlenet": (224, 16, 1000, "googlenet"),
    "vgg16_bn_cifar": (32, 128, 10, None),
    "googlenet_cifar": (32, 128, 10, None),
}
VARIANTS = ("visionzoo", "standard", "plain", "torch", "mindcv")
_ENV_KEYS = (
    "ONEDNN_MAX_CPU_ISA",
    "VISIONZOO_NO_CPU_DEFAULTS",
    "VISIONZOO_FAST_POOL",
    "VISIONZOO_FAST_CONV",
    "VISIONZOO_FAST_OPS",
    "ATEN_CPU_CAPABILITY",
)
ISA_CLASSES = ("native", "avx2")


def _variant_env(variant: str, isa_class: str = "native") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KEYS}
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if variant in ("plain", "mindcv"):
        env["VISIONZOO_NO_CPU_DEFAULTS"] = "1"
        env["VISIONZOO_FAST_POOL"] = "0"
        env["VISIONZOO_FAST_CONV"] = "0"
    if variant == "visionzoo":
        env["VISIONZOO_FAST_OPS"] = "require"
    if variant == "standard":
        env["VISIONZOO_FAST_POOL"] = "0"
        env["VISIONZOO_FAST_CONV"] = "0"
    if isa_class == "avx2":
        if variant != "plain" and variant != "mindcv":
            env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
        if variant == "torch":
            env["ATEN_CPU_CAPABILITY"] = "avx2"
    return env


def _isa_flags() -> list:
    """The vector-ISA flags of this CPU (avx*, amx*, fma, sse4*)."""
    from visionzoo import runtime

    return sorted(f for f in runtime.cpu_flags() if f.startswith(("avx", "amx", "fma", "sse4")))


def _git_commit() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            ).stdout.strip()
            or "unknown"
        )
    except OSError:
        return "unknown"


# ----------------------------------------------------------------------------------------------
# PyTorch counterparts (same layers, channels, kernels, output shapes and parameter counts)
# ----------------------------------------------------------------------------------------------
def _torch_model(name: str, num_classes: int):
    import torch
    from torch import nn

    class ConvAct(nn.Sequential):
        def __init__(self, cin, cout, k, stride=1, norm=False):
            layers = [nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)]
            if norm:
                layers.append(nn.BatchNorm2d(cout, eps=1e-3))
            layers.append(nn.ReLU(inplace=True))
            super().__init__(*layers)

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, pp, norm, k5):
            super().__init__()
            self.b1 = ConvAct(cin, c1, 1, norm=norm)
            self.b2 = nn.Sequential(ConvAct(cin, c3r, 1, norm=norm), ConvAct(c3r, c3, 3, norm=norm))
            self.b3 = nn.Sequential(ConvAct(cin, c5r, 1, norm=norm), ConvAct(c5r, c5, k5, norm=norm))
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), ConvAct(cin, pp, 1, norm=norm))

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    cfgs = [
        (192, 64, 96, 128, 16, 32, 32),
        (256, 128, 128, 192, 32, 96, 64),
        (480, 192, 96, 208, 16, 48, 64),
        (512, 160, 112, 224, 24, 64, 64),
        (512, 128, 128, 256, 24, 64, 64),
        (512, 112, 144, 288, 32, 64, 64),
        (528, 256, 160, 320, 32, 128, 128),
        (832, 256, 160, 320, 32, 128, 128),
        (832, 384, 192, 384, 48, 128, 128),
    ]

    class GoogLeNet(nn.Module):
        # MindSpore's 3x3/2 'same' max pool == PyTorch's ceil_mode=True without padding on these sizes.
        def __init__(self, small_input, norm, k5):
            super().__init__()
            if small_input:
                self.stem = ConvAct(3, 192, 3, norm=norm)
            else:
                self.stem = nn.Sequential(
                    ConvAct(3, 64, 7, 2, norm=norm),
                    nn.MaxPool2d(3, 2, ceil_mode=True),
                    ConvAct(64, 64, 1, norm=norm),
                    ConvAct(64, 192, 3, norm=norm),
                    nn.MaxPool2d(3, 2, ceil_mode=True),
                )
            blocks = [Inception(*c, norm=norm, k5=k5) for c in cfgs]
            self.body = nn.Sequential(
                *blocks[:2],
                nn.MaxPool2d(3, 2, ceil_mode=True),
                *blocks[2:7],
                nn.MaxPool2d(2, 2, ceil_mode=True),
                *blocks[7:],
            )
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(1024, num_classes)

        def forward(self, x):
            x = self.body(self.stem(x))
            return self.fc(self.drop(x.mean((2, 3))))

    class VGG16BNCifar(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 3
            for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(cin, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                    cin = v
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(512, num_classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    if name == "googlenet":  # MindCV flavour: conv + ReLU (no BN), true 5x5 branch
        return GoogLeNet(small_input=False, norm=False, k5=5)
    if name == "googlenet_cifar":
        return GoogLeNet(small_input=True, norm=True, k5=3)
    if name == "vgg16_bn_cifar":
        return VGG16BNCifar()
    raise KeyError(name)


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------
class _TorchRunner:
    def __init__(self, model_name, batch, size, classes):
        import torch

        torch.manual_seed(0)
        self.torch = torch
        self.model = _torch_model(model_name, classes)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x = torch.randn(batch, 3, size, size)
        self.y = torch.randint(0, classes, (batch,))

    def train_step(self):
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return float(loss)

    def infer_step(self):
        self.model.eval()
        with self.torch.inference_mode():
            return float(self.model(self.x)[0, 0])


class _MindSporeRunner:
    def __init__(self, variant, model_name, batch, size, classes, mode):
        import mindspore as ms
        import numpy as np
        from mindspore import nn

        ms.set_context(mode=mode)
        ms.set_seed(0)
        self.mode = mode
        rng = np.random.default_rng(0)
        self.x = ms.Tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
        self.y = ms.Tensor(rng.integers(0, classes, batch).astype(np.int32))
        self.trainer = None
        if variant in ("visionzoo", "standard"):  # through visionzoo's trainer: the step cell it compiles
            from visionzoo.tasks.benchmark import training_trainer  # visionzoo-benchmark's training set-up

            self.trainer = training_trainer(model_name, batch, size, classes, mode)
            self.model = self.trainer.network
            self.train_net = self.trainer.train_step
        else:
            if variant == "mindcv":
                import mindcv

                self.model = mindcv.create_model(MODELS[model_name][3], num_classes=classes)
            else:
                import visionzoo

                self.model = visionzoo.create_model(model_name, num_classes=classes)
            loss = nn.CrossEntropyLoss()
            opt = nn.Momentum(self.model.trainable_params(), learning_rate=0.01, momentum=0.9)
            self.train_net = nn.TrainOneStepCell(nn.WithLossCell(self.model, loss), opt)
        self.params = sum(int(np.prod(p.shape)) for p in self.model.trainable_params())
        self.fast_layers = sum(bool(getattr(c, "fast", False)) for _, c in self.model.cells_and_names())
        self.eval_net = _EvalNet(self.model)

    def compile(self):
        """Compile the training graph without running it (graph mode); returns seconds."""
        t0 = time.perf_counter()
        if self.mode == 0:
            self.train_net.set_train(True)
            self.train_net.compile(self.x, self.y)
        return time.perf_counter() - t0

    def train_step(self):
        self.train_net.set_train(True)
        if self.trainer is not None:
            loss, _ = self.train_net(self.x, self.y)
            return float(loss.asnumpy())
        return float(self.train_net(self.x, self.y).asnumpy())

    def infer_step(self):
        self.train_net.set_train(False)
        return float(self.eval_net(self.x).asnumpy()[0, 0])


def _EvalNet(model):  # a separate top cell so that inference gets its own graph
    from mindspore import nn

    class EvalNet(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, x):
            return self.net(x)

    return EvalNet(model)


def _peak_rss_mb() -> float:
    # not visionzoo.tasks.benchmark's: importing visionzoo would set the oneDNN cap in the PyTorch worker too
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_main(args) -> None:
    """Build the model, then answer 'train n' / 'infer n' / 'quit' lines on stdin with JSON lines."""
    size, default_batch, classes, _ = MODELS[args.model]
    batch = args.batch or default_batch
    t0 = time.perf_counter()
    if args.worker == "torch":
        runner = _TorchRunner(args.model, batch, size, classes)
        info = {
            "threads": runner.torch.get_num_threads(),
            "version": runner.torch.__version__,
            "cpu_capability": runner.torch.backends.cpu.get_cpu_capability(),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        }
    else:
        runner = _MindSporeRunner(args.worker, args.model, batch, size, classes, args.mode)
        import mindspore as ms

        info = {
            "version": ms.__version__,
            "fast_layers": runner.fast_layers,
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        }
        if args.worker == "visionzoo":
            import ctypes

            from visionzoo.ops.conv import build_conv_kernels, effective_isa

            lib = ctypes.CDLL(build_conv_kernels())
            info.update(fast_isa=effective_isa(lib), threads=lib.VzConvThreads())
    build_s = time.perf_counter() - t0
    compile_s = runner.compile() if hasattr(runner, "compile") else 0.0
    t0 = time.perf_counter()
    runner.train_step()
    first_train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner.infer_step()
    first_infer_s = time.perf_counter() - t0
    first_train_s += compile_s  # the first step includes compilation
    # visionzoo's convolutions tune themselves over their first calls (one candidate formulation per
    # call): warm up until that is over, so that the timed steps measure the steady state; reported
    tuning_steps, tuning_s = 0, 0.0
    if args.worker == "visionzoo":
        from visionzoo.ops.conv import tuning_pending

        t0 = time.perf_counter()
        while tuning_pending() and tuning_steps < 40:
            runner.train_step()
            runner.infer_step()
            tuning_steps += 1
        tuning_s = time.perf_counter() - t0
    _reply(
        dict(
            info,
            params=runner.params,
            batch=batch,
            build_s=build_s,
            compile_s=compile_s,
            first_train_s=first_train_s,
            first_infer_s=first_infer_s,
            tuning_steps=tuning_steps,
            tuning_s=tuning_s,
        )
    )
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "quit":
            final = {"peak_rss_mb": _peak_rss_mb()}
            if args.worker == "visionzoo":  # the conv kernel's scratch buffers, and how many sets of them
                import ctypes

                from visionzoo.ops.conv import build_conv_kernels

                lib = ctypes.CDLL(build_conv_kernels())
                lib.VzConvScratchBytes.restype = ctypes.c_size_t
                sets = ctypes.c_int(0)
                final.update(scratch_mb=lib.VzConvScratchBytes(ctypes.byref(sets)) / 2**20, scratch_sets=sets.value)
            _reply(final)
            return
        step = runner.train_step if cmd == "train" else runner.infer_step
        times, cpu = [], []
        for _ in range(int(rest[0])):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        _reply({"times": times, "cpu": cpu})


def _reply(obj) -> None:
    sys.stdout.write("@@" + json.dumps(obj) + "\n")
    sys.stdout.flush()


class WorkerProcess:
    """A benchmark worker in its own process: commands on its stdin, ``@@``-prefixed JSON replies on its stdout
    (bench_models.py and bench_inference.py)."""

    def __init__(self, name: str, cmd, verbose: bool, env=None) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def read(self):
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"worker {self.name} died (exit code {self.proc.wait()}); rerun with --verbose")

    def ask(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()


class Worker(WorkerProcess):
    def __init__(self, variant, model, args):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            variant,
            "--model",
            model,
            "--mode",
            str(args.mode),
        ]
        if args.batch:
            cmd += ["--batch", str(args.batch)]
        self.variant = variant
        super().__init__(variant, cmd, args.verbose, env=_variant_env(variant, args.isa_class))


def bench_model(model: str, variants, args) -> dict:
    results = {}
    workers = []
    for v in variants:  # start and compile one at a time: compile times are not disturbed
        w = Worker(v, model, args)
        results[v] = w.read()
        results[v].update(train=[], infer=[], train_cpu=[], infer_cpu=[], train_rounds=[], infer_rounds=[])
        workers.append(w)
        tuning = (
            f", then {results[v]['tuning_steps']} steps ({results[v]['tuning_s']:.1f} s) until its "
            f"convolutions were tuned"
            if results[v].get("tuning_steps")
            else ""
        )
        print(f"  {model:16s} {v:9s} ready: first train step {results[v]['first_train_s']:.1f} s{tuning}", flush=True)
    for r in range(args.rounds):
        for kind in ("train", "infer") if args.infer else ("train",):
            for w in workers:
                n = args.steps if kind == "train" else args.infer_steps
                reply = w.ask(f"{kind} {n}")
                results[w.variant][kind] += reply["times"]
                results[w.variant][kind + "_rounds"].append(statistics.median(reply["times"]))
                results[w.variant][kind + "_cpu"] += reply["cpu"]
    for w in workers:
        results[w.variant].update(w.ask("quit"))
        w.proc.wait()
    return results


def _fmt_table(all_results, args) -> str:
    lines = [
        "| model | batch | variant | train s/step | spread | train img/s | visionzoo speed-up | infer img/s | spread "
        "| visionzoo speed-up | train CPU s/step | first step s | compile s | peak RSS MB | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, res in all_results.items():
        base = res.get("visionzoo")
        for v, r in res.items():
            batch = r["batch"]
            tr = statistics.median(r["train"])
            inf = statistics.median(r["infer"]) if r["infer"] else float("nan")
            vs_t = vs_i = "-"
            if base and v != "visionzoo":
                vs_t = f"{tr / statistics.median(base['train']):.2f}x"
                if r["infer"]:
                    vs_i = f"{inf / statistics.median(base['infer']):.2f}x"
            lines.append(
                f"| {model} | {batch} | {v} | {tr:.3f} | {_spread(r['train_rounds'])} | {batch / tr:.1f} | "
                f"{vs_t} | {batch / inf:.1f} | {_spread(r['infer_rounds'])} | {vs_i} | "
                f"{statistics.median(r['train_cpu']):.2f} | "
                f"{r['first_train_s']:.1f} | {r['compile_s']:.1f} | "
                f"{r['peak_rss_mb']:.0f} | "
                f"{r['params']:,} |"
            )
    lines.append("")
    lines.append(
        "spread = (slowest - fastest) / median of the per-round median step times. "
        "visionzoo speed-up = that variant's median step time / visionzoo's (> 1: visionzoo is faster). "
        "train CPU s/step = process CPU time (all threads) per training step: less sensitive than wall "
        "time to other jobs on the machine. compile s = graph compilation of the training step "
        "(Cell.compile, before the first step; 0 for PyTorch eager). first step includes it."
    )
    return "\n".join(lines)


def _write_json(path: str, meta: dict, results: dict) -> None:
    meta = dict(meta, load_now=os.getloadavg()[0])
    try:
        from importlib.metadata import version

        meta["torch"] = version("torch")
    except Exception:  # noqa: BLE001 - not installed
        pass
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)


def _spread(rounds) -> str:
    if len(rounds) < 2:
        return "-"
    return f"{(max(rounds) - min(rounds)) / statistics.median(rounds):.0%}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma list of: " + ", ".join(MODELS))
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list of: " + ", ".join(VARIANTS))
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per variant per round")
    p.add_argument("--infer-steps", type=int, default=3, help="timed inference batches per variant per round")
    p.add_argument("--no-infer", dest="infer", action="store_false", help="skip inference timing")
    p.add_argument("--batch", type=int, default=0, help="override every model's batch size")
    p.add_argument("--mode", type=int, default=0, help="MindSpore mode: 0 graph (default), 1 PyNative")
    p.add_argument(
        "--isa-class",
        choices=ISA_CLASSES,
        default="native",
        help="native: each library at the host's best ISA; avx2: both capped at AVX2 (module docstring)",
    )
    p.add_argument("--json", help="write raw results (with the machine, date and versions) here")
    p.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    import datetime
    import platform

    import mindspore as ms

    from visionzoo.tasks.benchmark import cpu_model

    all_results = {}
    meta = {
        "cpu": cpu_model(),
        "isa_flags": _isa_flags(),
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "isa_class": args.isa_class,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "mindspore": ms.__version__,
        "visionzoo_commit": _git_commit(),
        "host": platform.node(),
        "load_before": os.getloadavg()[0],
        "argv": sys.argv[1:],
    }
    print(
        f"machine: {meta['cpu']}, {meta['cpus']} CPUs ({meta['affinity']} usable), python {meta['python']}; "
        f"ISA flags: {' '.join(meta['isa_flags'])}; ISA class: {args.isa_class}; "
        f"load average before: {meta['load_before']:.1f}",
        flush=True,
    )
    for model in args.models.split(","):
        variants = [v for v in args.variants.split(",") if v != "mindcv" or MODELS[model][3]]
        print(f"{model}: {', '.join(variants)}", flush=True)
        all_results[model] = bench_model(model, variants, args)
        for v, r in all_results[model].items():
            print(
                f"  {v}: threads {r.get('threads', '?')}, oneDNN cap {r.get('ONEDNN_MAX_CPU_ISA')}"
                + (f", fast-path ISA {r['fast_isa']}" if "fast_isa" in r else "")
                + (f", ATen {r['cpu_capability']}" if "cpu_capability" in r else "")
                + (
                    f", conv scratch {r['scratch_mb']:.0f} MiB in {r['scratch_sets']} sets" if "scratch_mb" in r else ""
                ),
                flush=True,
            )
        print(_fmt_table({model: all_results[model]}, args), flush=True)
        if args.json:  # after every model: a run stopped early keeps what it finished
            _write_json(args.json, meta, all_results)
    print("\n" + _fmt_table(all_results, args))
    load = os.getloadavg()[0]
    print(
        f"load average after: {load:.1f}"
        + (
            " (above the CPU count: other processes shared the CPU, absolute numbers are low and noisy)"
            if load > os.cpu_count()
            else ""
        )
    )
    meta["load_after"] = load
    if args.json:
        _write_json(args.json, meta, all_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
