"""Training-step throughput of the paper-size U-Net: a plain fp32 loop vs the engine's fast path.

    python benchmarks/bench_train.py          # on a CUDA GPU: 256x256, batch 32, 20 steps after 5 warm-up
    python benchmarks/bench_train.py          # without one (scale_for_device): 64x64, batch 2, 3 steps after 2

Network: ``comp448.nets.UNet(in_channels=1, num_classes=2, padding="same")``, the paper's widths
(64..1024, depth 4, 31,030,658 parameters) with "same" 3x3 convolutions so that a 256x256 input gives
a 256x256 output (the paper's valid convolutions accept 252 or 268 but not 256, and output 68 or 84
pixels: ``unet_output_size``); ``--valid`` benchmarks the valid network at the nearest admissible
size instead. Loss: 2-class cross-entropy on random labels (the loss is not what is measured).

Both paths run in ONE process, one after the other, on the same device, batch and weights:

- plain: float32, contiguous NCHW, eager, ``loss.backward(); opt.step()``;
- fast: ``comp448.train.Trainer.train_step`` with bf16 autocast, channels_last and ``torch.compile``
  (``--no-compile`` to leave compilation out, e.g. to see its share).

Reported: images/s (steady state, after ``--warmup`` steps that include compilation), the speedup,
and achieved TFLOP/s = (FLOPs of one forward+backward, counted by
``torch.utils.flop_counter.FlopCounterMode`` on the eager model) x steps / time. Prints a JSON line;
``--json PATH`` and ``--plot PATH`` also save it and a bar chart.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(model, x, y) -> int:
    """FLOPs of one forward + backward (FlopCounterMode counts 2 per multiply-add)."""
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def bench_plain(model, x, y, steps, warmup):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(x.device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    _sync(x.device)
    return time.perf_counter() - t0


def bench_engine(model, x, y, steps, warmup, compile_):
    from comp448.train import Task, Trainer, TrainConfig
    from comp448.train.presets import cross_entropy
    data = torch.utils.data.TensorDataset(x[:1].cpu(), y[:1, None].float().cpu())   # the Trainer wants data
    cfg = TrainConfig(epochs=1, batch_size=1, lr=1e-4, amp="bf16", channels_last=True, compile=compile_,
                      device=str(x.device), scheduler="none", progress=False, plot=False)
    trainer = Trainer(model, data, loss=Task(cross_entropy, kind="multiclass"), config=cfg)
    batch = trainer.to_device({"image": x, "mask": y[:, None].float()})
    trainer.train_model.train()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(x.device)
            t0 = time.perf_counter()
        trainer.train_step(batch)
    _sync(x.device)
    return time.perf_counter() - t0, trainer


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    from comp448.train import scale_for_device
    full, short = dict(size=256, batch=32, steps=20, warmup=5), dict(size=64, batch=2, steps=3, warmup=2)
    d = scale_for_device(full, short)
    p.add_argument("--size", type=int, default=d["size"])
    p.add_argument("--batch", type=int, default=d["batch"])
    p.add_argument("--steps", type=int, default=d["steps"])
    p.add_argument("--warmup", type=int, default=d["warmup"])
    p.add_argument("--base", type=int, default=64, help="U-Net width (64 = paper)")
    p.add_argument("--device", default="auto")
    p.add_argument("--valid", action="store_true", help="valid convolutions at the nearest admissible size")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--json")
    p.add_argument("--plot")
    a = p.parse_args(argv)

    from comp448 import nets
    from comp448.train import pick_device, seed_everything
    device = pick_device(a.device)
    seed_everything(0)
    size = a.size
    if a.valid:
        from comp448.nets import unet_output_size
        size = next(n for d in range(0, 64) for n in (a.size + d, a.size - d) if _ok(unet_output_size, n))
    model = nets.UNet(in_channels=1, num_classes=2, base=a.base, padding="valid" if a.valid else "same").to(device)
    x = torch.randn(a.batch, 1, size, size, device=device)
    with torch.no_grad():
        out_size = model(x[:1]).shape[-1]
    y = torch.randint(0, 2, (a.batch, out_size, out_size), device=device)
    flops = count_flops(model, x, y)
    fast_model = copy.deepcopy(model)

    t_plain = bench_plain(model, x, y, a.steps, a.warmup)
    t_fast, trainer = bench_engine(fast_model, x, y, a.steps, a.warmup, compile_=not a.no_compile)
    n_img = a.steps * a.batch
    res = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device.type} "
                  f"({torch.get_num_threads()} threads)",
        "torch": torch.__version__, "params": nets.count_parameters(model), "size": size, "out_size": out_size,
        "batch": a.batch, "steps": a.steps, "warmup": a.warmup, "gflop_per_step": flops / 1e9,
        "plain_img_s": n_img / t_plain, "fast_img_s": n_img / t_fast, "speedup": t_plain / t_fast,
        "plain_tflops": flops * a.steps / t_plain / 1e12, "fast_tflops": flops * a.steps / t_fast / 1e12,
        "fast_path": {"amp": trainer.amp, "channels_last": trainer.channels_last, "compiled": trainer.compiled},
    }
    print(json.dumps(res))
    print(f"plain fp32: {res['plain_img_s']:.2f} img/s ({res['plain_tflops']:.3f} TFLOP/s) | "
          f"engine fast path: {res['fast_img_s']:.2f} img/s ({res['fast_tflops']:.3f} TFLOP/s) | "
          f"speedup x{res['speedup']:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
    if a.plot:
        from comp448 import viz
        viz.plot_throughput({"plain fp32": res["plain_img_s"], "bf16+CL+compile": res["fast_img_s"]},
                            path=a.plot, title=f"U-Net {size}x{size}, batch {a.batch}, {res['device']}")
    return res


def _ok(fn, n):
    try:
        fn(n, 4)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
