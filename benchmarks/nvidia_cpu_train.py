"""Run NVIDIA's stylegan2-ada-pytorch training loop on the CPU for a fixed number of minutes: the
peer of `benchmarks/time_to_quality.py`. Run it with a Python that has PyTorch (CPU), click,
Pillow, psutil, SciPy and requests, outside this package's environment:

    PYTHON_WITH_TORCH benchmarks/nvidia_cpu_train.py --nvidia-dir ../nvidia-sg2ada --data faces64.zip \\
        --outdir runs/nvidia --minutes 30 [--cfg auto] [--batch 32] [--kimg-per-tick 0.1]

NVIDIA's code is imported from --nvidia-dir (a checkout of NVlabs/stylegan2-ada-pytorch made with
the search tool's `fetch`, outside this repository); nothing of it is copied here. Its training
options come from its own `train.setup_training_loop_kwargs` (the `auto` configuration, ADA, no
metrics, no mirroring, and its own `--fp32` switch: float16 convolutions, its GPU default for the top
4 resolutions, run about ten times slower than float32 on a CPU) and its own
`training_loop.training_loop` trains. Only where tensors live
changes, in this process: in the loop's module, `torch.device('cuda', ...)` is the CPU and
`torch.cuda`'s events, streams and memory statistics are stand-ins (`cpu_torch`);
`Tensor.pin_memory` returns the tensor, `Sampler.__init__` accepts the argument PyTorch 2 dropped,
the data loader uses one worker (the machine has two cores), and the preview grid the loop draws
when it starts holds 8 images instead of up to 1,024 (PNG previews only; training is untouched). Its custom CUDA ops fall back to their reference
implementations on the CPU by themselves.

The loop writes a network snapshot and a line of `stats.jsonl` (`Timing/total_sec`, `Progress/kimg`)
every tick, and stops at the first tick end after --minutes (NVIDIA's `abort_fn`), with a last
snapshot. It names a snapshot by whole thousands of images (`network-snapshot-000000.pkl` until the
first 1,000), so at a CPU's pace every tick overwrites the last; each snapshot is therefore also
written as `tick-NNNNNN.pkl` (the tick's index, the line of `stats.jsonl`), and of those only the last
one written by each --every minutes and the newest are kept (a 64 px snapshot is about 270 MB).
"""

import argparse
import json
import os
import pickle
import sys
import time
import types


def cpu_torch(torch):
    """A stand-in for the `torch` module as NVIDIA's training loop names it: `torch.device('cuda', ...)`
    is the CPU and `torch.cuda`'s events, streams and memory statistics do nothing (events still
    time), everything else is torch itself."""

    class Event:
        def __init__(self, enable_timing=False):
            self.time = 0.0

        def record(self, stream=None):
            self.time = time.perf_counter()

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return (end.time - self.time) * 1000.0

    class CpuTorch(types.ModuleType):
        def __getattr__(self, name):
            return getattr(torch, name)

    stand_in = CpuTorch("torch")
    stand_in.device = lambda kind, index=None: torch.device("cpu" if str(kind).startswith("cuda") else kind)
    stand_in.cuda = types.SimpleNamespace(Event=Event, current_stream=lambda device=None: None,
                                          max_memory_allocated=lambda device=None: 0,
                                          reset_peak_memory_stats=lambda device=None: None)
    return stand_in


def _small_grid(found):
    (width, height), images, labels = found
    return (4, 2), images[:8], labels[:8]


class TickSnapshots:
    """Stands in for the `pickle` module in NVIDIA's loop module: `dump` also writes the snapshot as
    tick-NNNNNN.pkl beside the loop's file, and removes the previous tick's copy unless it was the last
    written before a multiple of `every` minutes (the clock: `started`, as the abort test's)."""

    def __init__(self, every, started):
        self.every, self.started, self.tick, self.previous = every, started, 0, None

    def __getattr__(self, name):
        return getattr(pickle, name)

    def dump(self, obj, file, *args, **kwargs):
        pickle.dump(obj, file, *args, **kwargs)
        path = os.path.join(os.path.dirname(os.path.abspath(file.name)), f"tick-{self.tick:06d}.pkl")
        with open(path, "wb") as copy:
            pickle.dump(obj, copy, *args, **kwargs)
        mark = int((time.time() - self.started) / 60.0 // self.every)
        if self.previous is not None and self.previous[1] == mark:  # not the last before a mark
            os.remove(self.previous[0])
        self.tick, self.previous = self.tick + 1, (path, mark)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nvidia-dir", required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--data", required=True, help="a dataset zip or folder of PNGs (NVIDIA's ImageFolderDataset)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--minutes", type=float, required=True, help="stop at the first tick end after this")
    parser.add_argument("--cfg", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="default: the configuration's")
    parser.add_argument("--kimg-per-tick", type=float, default=0.1, help="thousands of images between snapshots")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=float, default=5.0, help="minutes between the tick snapshots kept")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.path.abspath(args.nvidia_dir))
    import torch

    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self  # no pinned memory without CUDA
    # PyTorch 2 dropped Sampler.__init__(data_source), which NVIDIA's InfiniteSampler still calls.
    torch.utils.data.Sampler.__init__ = lambda self, *args, **kwargs: None
    import dnnlib  # NVIDIA's, from --nvidia-dir
    import train as nvidia_train
    from training import training_loop

    training_loop.torch = cpu_torch(torch)
    grid = training_loop.setup_snapshot_image_grid
    # Its preview grid at the start (up to 32 x 32 images through G): 8 images are enough for a CPU.
    training_loop.setup_snapshot_image_grid = lambda training_set, random_seed=0: _small_grid(
        grid(training_set, random_seed))

    _, kwargs = nvidia_train.setup_training_loop_kwargs(gpus=1, snap=1, metrics=[], seed=args.seed, data=args.data,
                                                        cfg=args.cfg, batch=args.batch, aug="ada", mirror=False,
                                                        fp32=True)
    kwargs.kimg_per_tick = args.kimg_per_tick
    kwargs.image_snapshot_ticks = None  # no image grids: they would cost training time
    kwargs.data_loader_kwargs = dnnlib.EasyDict(pin_memory=False, num_workers=1, prefetch_factor=2)
    kwargs.total_kimg = 10**6  # the clock stops it
    os.makedirs(args.outdir, exist_ok=True)
    kwargs.run_dir = args.outdir
    with open(os.path.join(args.outdir, "training_options.json"), "w") as file:
        json.dump(kwargs, file, indent=2, default=str)
    started = time.time()
    kwargs.abort_fn = lambda: time.time() - started >= 60.0 * args.minutes
    training_loop.pickle = TickSnapshots(args.every, started)
    from torch_utils import custom_ops, training_stats

    custom_ops.verbosity = "none"
    training_stats.init_multiprocessing(rank=0, sync_device=None)
    training_loop.training_loop(rank=0, **kwargs)
    print(json.dumps({"minutes": (time.time() - started) / 60.0, "outdir": args.outdir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
