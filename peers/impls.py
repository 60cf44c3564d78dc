"""The peers: what a PyTorch user would run instead of an attnbench kernel.

Each peer stands in for the attnbench kernels whose function it computes (`matches`) and
has one or more variants (torch_sdpa: one per SDPA backend). A variant's `build` takes an
exported point (peers.plan.Exported) and returns a callable with every input already on the
device; calling it computes the output [batch, heads, N, dh] and is all that is timed.
Everything else (copies to the device, LISA's exp(T) table, which the authors' profiling also
precomputes) happens in `build`.

    torch_vanilla_eager  softmax(masked_fill(q @ k^T * scale, mask, -inf), -1) @ v, the
                         LISA paper's baseline (mask: triu(ones(N, N, bool), 1), built per call)
    torch_sdpa           torch.nn.functional.scaled_dot_product_attention, per SDPA backend
    torch_lisa_ops       the LISA authors' op sequence: one-hot codes, cumsum over positions,
                         exp(T) rows gathered at each position's own code, weights,
                         normalization per codebook, einsum(...).sum over codebooks
    torch_linear_elu     Linear Transformer in plain ops: phi = elu + 1, causal state by cumsum
"""

import contextlib
import math
import subprocess
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

# The denominator's epsilon of the Linear Transformer (kLinearDenominatorEps in
# kernels/include/attnbench/math/linear.hpp), so both compute the same function.
LINEAR_DENOMINATOR_EPS = 1e-6


class Refused(Exception):
    """The variant cannot run this point (an SDPA backend that refuses the shape)."""


@dataclass
class Variant:
    label: str = ""                       # "" or the SDPA backend ("math", "flash", ...)
    build: Optional[Callable] = None      # (exported, device) -> callable
    context: Callable = contextlib.nullcontext
    skip_reason: str = ""                 # set: the row is skipped without running


@dataclass
class Peer:
    name: str
    family: str
    matches: Callable                     # plan point (dict) -> bool
    variants: Callable                    # (device, sdpa_backends) -> [Variant]
    function_of: Callable = lambda point: ""  # inputs that change the function (lisa_soft)
    axes_extra: Callable = lambda variant: {}  # row axes the variant adds
    nonfinite_hint: Callable = lambda axes: ""  # why the output may overflow at these axes
    # a coarse upper estimate of the call's peak (bytes) for the skip before a point that
    # cannot fit: a guard against the out-of-memory killer, not a measurement
    peak_estimate: Callable = lambda axes, variant: 0
    doc: str = ""


def debian_package_version():
    """python3-torch's version when torch is Debian's package (e.g. "1.13.1+dfsg-4"), or ""."""
    if not torch.__file__.startswith("/usr/lib/python3/dist-packages/"):
        return ""
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def torch_version():
    """The torch release. Debian's python3-torch 1.13.1 was built from a snapshot and calls
    itself 1.13.0a0, so for it the package's upstream version is the release."""
    package = debian_package_version()
    if package:
        return package.split(":")[-1].split("+")[0].split("-")[0]
    return torch.__version__.split("+")[0]


def on_device(exported, name, device, dtype=None):
    """A copy of an exported array on the device (a copy: its bytes count as the peer's)."""
    return torch.tensor(exported.arrays[name], device=device, dtype=dtype)


# ---- vanilla --------------------------------------------------------------------------------

def vanilla_eager(q, k, v, causal):
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(-2, -1) * scale
    if causal:
        n = q.shape[-2]
        mask = torch.triu(torch.ones(n, n, dtype=torch.bool, device=q.device), 1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, -1) @ v


def build_vanilla_eager(exported, device):
    q, k, v = (on_device(exported, n, device) for n in ("q", "k", "v"))
    causal = exported.axes["causal"]
    return lambda: vanilla_eager(q, k, v, causal)


# SDPA backends per device, by the names torch.nn.attention.SDPBackend uses.
SDPA_BACKENDS = {"cpu": ["math", "flash"], "cuda": ["math", "flash", "efficient", "cudnn"]}
SDPA_ENUM = {"math": "MATH", "flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION",
             "cudnn": "CUDNN_ATTENTION"}


def sdpa_context(backend):
    """A context that lets SDPA use only `backend`, or None when this torch cannot select it."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel  # torch >= 2.3
        member = getattr(SDPBackend, SDPA_ENUM[backend], None)
        return None if member is None else (lambda: sdpa_kernel(member))
    except ImportError:
        pass
    if backend == "cudnn":
        return None
    flags = {"enable_math": backend == "math", "enable_flash": backend == "flash",
             "enable_mem_efficient": backend == "efficient"}
    return lambda: torch.backends.cuda.sdp_kernel(**flags)  # torch 2.0 - 2.2


def build_sdpa(exported, device):
    q, k, v = (on_device(exported, n, device) for n in ("q", "k", "v"))
    causal = exported.axes["causal"]
    call = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # a backend that cannot take the point raises at the first call and says why in warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except RuntimeError as e:
            why = "; ".join(str(w.message).split("\n")[0] for w in caught) or str(e).split("\n")[0]
            raise Refused(f"refuses this point: {why}")
    return call


def sdpa_variants(device, selected=None):
    if not hasattr(F, "scaled_dot_product_attention"):
        reason = f"torch {torch_version()} has no scaled_dot_product_attention (needs >= 2.0)"
        return [Variant(skip_reason=reason)]
    variants = []
    for backend in SDPA_BACKENDS[device]:
        if selected and backend not in selected:
            continue
        ctx = sdpa_context(backend)
        if ctx is None:
            variants.append(Variant(backend, skip_reason=f"torch {torch_version()} cannot select "
                                                         f"the {backend} SDPA backend"))
        else:
            variants.append(Variant(backend, build_sdpa, ctx))
    return variants


# ---- LISA -----------------------------------------------------------------------------------

def lisa_tables(codebooks, projections):
    """Cv and E = exp(T - rowmax T), T = Cq Ck^T / sqrt(dh), per head and codebook: the table
    the authors precompute outside the timed region (so does the lisa kernels' prepare)."""
    wq, wk, wv = projections if projections else (None, None, None)
    cq = codebooks @ wq if wq is not None else codebooks
    ck = codebooks @ wk if wk is not None else codebooks
    cv = codebooks @ wv if wv is not None else codebooks
    t = cq @ ck.transpose(-2, -1) / math.sqrt(codebooks.shape[-1])
    return torch.exp(t - t.amax(-1, keepdim=True)), cv


def prefix_histogram(assign, decay):
    """Causal histogram over positions (dim 2); with decay the authors' closed form
    cumsum(w * A) / w, w_j = exp(decay j), which overflows in float32 past ~88 / decay."""
    if decay <= 0:
        return assign.cumsum(2)
    w = torch.exp(decay * torch.arange(assign.shape[2], device=assign.device,
                                       dtype=assign.dtype)).view(-1, 1, 1)
    return (assign * w).cumsum(2) / w


def lisa_ops(assign, query_codes, table, cv, head_index, book_index, causal, decay):
    """assign [b, h, N, B, W] (one-hot codes or soft probabilities), query_codes [b, h, N, B],
    table E [h, B, W, W], cv [h, B, W, dh]; returns [b, h, N, dh]."""
    hist = prefix_histogram(assign, decay) if causal else assign.sum(2, keepdim=True)
    rows = table[head_index, book_index, query_codes]
    weights = hist * rows
    weights = weights / weights.sum(-1, keepdim=True)
    # the authors' einsum('blci,cid->blcd', ...).sum(2), with heads: N x B x dh before the sum
    return torch.einsum("xhlci,hcid->xhlcd", weights, cv).sum(3)


def build_lisa_ops(exported, device):
    axes, arrays = exported.axes, exported.arrays
    codebooks = on_device(exported, "codebooks", device)
    projections = None
    if "wq" in arrays:
        projections = tuple(on_device(exported, n, device) for n in ("wq", "wk", "wv"))
    table, cv = lisa_tables(codebooks, projections)
    heads, books, width = table.shape[0], table.shape[1], table.shape[2]
    head_index = torch.arange(heads, device=device).view(1, heads, 1, 1)
    book_index = torch.arange(books, device=device).view(1, 1, 1, books)
    causal, decay = axes["causal"], float(axes.get("decay", 0))
    if "probs" in arrays:  # LISA-Soft: histogram of probabilities, query row at the argmax
        probs = on_device(exported, "probs", device)
        query = probs.argmax(-1)
        return lambda: lisa_ops(probs, query, table, cv, head_index, book_index, causal, decay)
    codes = on_device(exported, "codes", device, dtype=torch.int64)
    return lambda: lisa_ops(F.one_hot(codes, width).to(table.dtype), codes, table, cv,
                            head_index, book_index, causal, decay)


# ---- linear ---------------------------------------------------------------------------------

def linear_elu(q, k, v, causal):
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    if causal:
        state = torch.einsum("xhnd,xhne->xhnde", fk, v).cumsum(2)
        norm = fk.cumsum(2)
        num = torch.einsum("xhnd,xhnde->xhne", fq, state)
    else:
        state = torch.einsum("xhnd,xhne->xhde", fk, v)
        norm = fk.sum(2, keepdim=True)
        num = torch.einsum("xhnd,xhde->xhne", fq, state)
    return num / ((fq * norm).sum(-1, keepdim=True) + LINEAR_DENOMINATOR_EPS)


def build_linear_elu(exported, device):
    q, k, v = (on_device(exported, n, device) for n in ("q", "k", "v"))
    causal = exported.axes["causal"]
    return lambda: linear_elu(q, k, v, causal)


# ---- peak estimates (the memory guard) ------------------------------------------------------

def sequences(a):
    return a["batch"] * a["heads"]


def eager_estimate(a, variant):
    """Eager vanilla (and SDPA's math backend) keep up to three N x N float32 tensors and
    the N x N boolean mask alive."""
    if variant.label not in ("", "math"):
        return 0
    n = a["seq_len"]
    return sequences(a) * n * n * 12 + (n * n if a["causal"] else 0)


def lisa_estimate(a, variant):
    """Per position and codebook: the int64 one-hot and five float32 W-vectors (assignments,
    histogram, gathered rows, weights twice), and the N x B x dh einsum output."""
    per = a["codebooks"] * (28 * a["codewords"] + 8 * a["head_dim"])
    return sequences(a) * a["seq_len"] * per


def linear_estimate(a, variant):
    """Causal: the per-position dh x dh states, before and after the cumsum."""
    return sequences(a) * a["seq_len"] * a["head_dim"] ** 2 * 8 if a["causal"] else 0


# ---- the peers ------------------------------------------------------------------------------

PEERS = [
    Peer("torch_vanilla_eager", "vanilla", lambda p: p["is_vanilla"],
         lambda device, sdpa: [Variant("", build_vanilla_eager)], peak_estimate=eager_estimate,
         doc="eager softmax attention, the LISA paper's baseline"),
    Peer("torch_sdpa", "vanilla", lambda p: p["is_vanilla"],
         lambda device, sdpa: sdpa_variants(device, sdpa),
         axes_extra=lambda v: {"sdpa_backend": v.label} if v.label else {},
         peak_estimate=eager_estimate,
         doc="scaled_dot_product_attention, one row per SDPA backend"),
    Peer("torch_lisa_ops", "lisa", lambda p: p["family"] == "lisa",
         lambda device, sdpa: [Variant("", build_lisa_ops)],
         function_of=lambda p: "soft" if "probs" in p["inputs"] else "hard",
         nonfinite_hint=lambda a: " (the authors' decay form cumsum(w A) / w overflows float32 "
                                  "past ~88 / decay positions)" if a.get("decay", 0) > 0 else "",
         peak_estimate=lisa_estimate,
         doc="the LISA authors' op sequence"),
    Peer("torch_linear_elu", "linear", lambda p: p["kernel"] == "linear_elu",
         lambda device, sdpa: [Variant("", build_linear_elu)], peak_estimate=linear_estimate,
         doc="Linear Transformer (elu + 1) in plain torch ops"),
]


def peer_names():
    return [p.name for p in PEERS]
