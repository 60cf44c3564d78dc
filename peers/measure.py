"""Timing and memory of one peer call, measured as the attnbench harness measures its rows
(results/README.md, "How a point is measured"): warm-up runs, then samples until both
min_reps and min_time_s are reached (at most max_reps; max_point_seconds cuts warm-up at half
and the samples at the whole), every sample kept.

Devices:
  torch-cpu   time.perf_counter; peak = the heap bytes the point's inputs hold plus the heap
              high-water mark of the timed calls, from the malloc interposer the runner is
              LD_PRELOADed with (libattnbench_heap_preload.so, read through ctypes)
  torch-cuda  CUDA events after a synchronize; peak = torch.cuda.max_memory_allocated after
              reset_peak_memory_stats() (inputs alive, warm-up done); the L2 is flushed before
              each sample when the point's tensors are smaller than it, as the tool does
"""

import ctypes
import os
import time
from pathlib import Path

import numpy as np
import torch

from peers.plan import PRELOADED_ENV


class HeapCounter:
    """The interposer's counters (harness/preload/heap_preload.cpp)."""

    def __init__(self, library):
        self.lib = ctypes.CDLL(str(library))
        for name in ("attnbench_heap_live_bytes", "attnbench_heap_peak_bytes"):
            getattr(self.lib, name).restype = ctypes.c_int64
        self.lib.attnbench_heap_reset.restype = None

    def reset(self):
        self.lib.attnbench_heap_reset()

    def live_bytes(self):
        return self.lib.attnbench_heap_live_bytes()

    def peak_bytes(self):
        return self.lib.attnbench_heap_peak_bytes()


def preloaded_heap_counter():
    """The counters, when this process runs with the interposer preloaded; else None."""
    library = os.environ.get(PRELOADED_ENV)
    if not library or library not in os.environ.get("LD_PRELOAD", "").split(":"):
        return None
    return HeapCounter(library) if Path(library).is_file() else None


class CpuDevice:
    backend = "torch-cpu"
    torch_device = "cpu"
    peak_source = "heap"

    def __init__(self, heap):
        self.heap = heap
        self._live_before_inputs = 0

    def name(self, environment):
        return environment.get("cpu_model", "cpu")

    def memory_bytes(self, environment):
        return environment.get("memory_bytes", 0)

    def before_inputs(self):
        self.heap.reset()
        self._live_before_inputs = self.heap.live_bytes()

    def input_bytes(self):
        """Heap bytes the point's inputs (and precomputed tables) hold."""
        return self.heap.live_bytes() - self._live_before_inputs

    def start_peak(self):
        self.heap.reset()

    def peak_bytes(self, input_bytes):
        return input_bytes + self.heap.peak_bytes()

    def prepare_flush(self, tensor_bytes):
        pass

    def time_call_ms(self, fn):
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        del out  # freed outside the timed region, but before the next call
        return (t1 - t0) * 1e3


class CudaDevice:
    backend = "torch-cuda"
    torch_device = "cuda"
    peak_source = "torch_cuda_allocator"

    def __init__(self):
        props = torch.cuda.get_device_properties(0)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 0) or (1 << 20))
        self.flush = None
        self._allocated_before_inputs = 0

    def name(self, environment):
        return torch.cuda.get_device_name(0)

    def memory_bytes(self, environment):
        return torch.cuda.get_device_properties(0).total_memory

    def before_inputs(self):
        torch.cuda.synchronize()
        self._allocated_before_inputs = torch.cuda.memory_allocated()

    def input_bytes(self):
        return torch.cuda.memory_allocated() - self._allocated_before_inputs

    def prepare_flush(self, tensor_bytes):
        """Twice the L2, zeroed before each sample, when the point's tensors fit in it."""
        flush_bytes = 2 * self.l2_bytes
        self.flush = torch.empty(flush_bytes, dtype=torch.uint8, device="cuda") \
            if tensor_bytes < flush_bytes else None

    def start_peak(self):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def peak_bytes(self, input_bytes):
        torch.cuda.synchronize()
        flush_bytes = self.flush.numel() if self.flush is not None else 0
        return torch.cuda.max_memory_allocated() - flush_bytes

    def time_call_ms(self, fn):
        if self.flush is not None:
            self.flush.zero_()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        out = fn()
        stop.record()
        stop.synchronize()
        del out
        return start.elapsed_time(stop)


def timed_samples(device, fn, timing, max_point_seconds, point_start):
    """(samples in ms, warm-up runs): the harness's loop (sweep.cpp, run_point). The peak
    restarts after the warm-up, so first-call caches and the previous point do not count."""
    elapsed = lambda: time.perf_counter() - point_start
    warmup_runs = 0
    for _ in range(timing["warmup"]):
        device.time_call_ms(fn)
        warmup_runs += 1
        if max_point_seconds > 0 and elapsed() > 0.5 * max_point_seconds:
            break
    device.start_peak()
    samples = []
    while True:
        samples.append(device.time_call_ms(fn))
        if len(samples) >= timing["max_reps"]:
            break
        if len(samples) >= timing["min_reps"] and sum(samples) >= timing["min_time_s"] * 1e3:
            break
        if max_point_seconds > 0 and elapsed() > max_point_seconds:
            break
    return samples, warmup_runs


def summarize(samples):
    """The time_ms object of a row (linear-interpolation quartiles, as stats.hpp)."""
    s = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(s)), "min": float(s.min()), "max": float(s.max()),
            "p25": float(np.percentile(s, 25)), "p75": float(np.percentile(s, 75)),
            "mean": float(s.mean()), "count": int(s.size),
            "samples": [round(x, 6) for x in samples]}


def rel_l2(output, rows, reference):
    """Relative L2 error of the checked rows, as rel_l2_rows (kernels/reference.cpp)."""
    b, h, n, dh = output.shape
    got = output.reshape(b * h, n, dh)[rows[:, 0], rows[:, 1]].astype(np.float64)
    num = float(np.sum((got - reference) ** 2))
    den = float(np.sum(reference ** 2))
    if not np.isfinite(num):
        return float("inf")
    return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))
