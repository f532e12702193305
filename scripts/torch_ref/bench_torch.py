#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh: runs the cases dbt-bench-cuda measured, same shapes and dtype,
through PyTorch (cuDNN / cuBLAS / SDPA), and prints one JSON line per case like dbt-bench-cuda --json.

    bench_torch.py dbt-bench.jsonl > torch-bench.jsonl

Timing: CUDA events, median of >= 5 runs after a warm-up; peak: torch.cuda.max_memory_allocated during the
case (inputs included, like dbt's allocator peak). Needs only torch; no network.
"""
import json
import sys

import torch
import torch.nn.functional as F

DT = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def rnd(shape, dt, scale=1.0):
    return (torch.rand(shape, device="cuda", dtype=torch.float32) * 2 - 1).mul_(scale).to(dt)


def setup(spec):
    """Returns the function to time for one case spec (see native/bench/cuda)."""
    k = spec["kind"]
    dt = DT[spec.get("dtype", "bf16")]
    if k == "gemm":
        a, b = rnd((spec["M"], spec["K"]), dt), rnd((spec["K"], spec["N"]), dt)
        return lambda: torch.mm(a, b)
    if k in ("conv_fwd", "conv_bwd"):
        n, c, h, w, o, ks = spec["N"], spec["C"], spec["H"], spec["W"], spec["O"], spec["k"]
        s, p = spec["stride"], spec["pad"]
        x, wt, b = rnd((n, c, h, w), dt), rnd((o, c, ks, ks), dt, 0.05), rnd((o,), dt)
        if k == "conv_fwd":
            return lambda: F.conv2d(x, wt, b, stride=s, padding=p)
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        dy = rnd(tuple(y.shape), dt)
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, wt, [o], [s, s], [p, p], [1, 1], False, [0, 0], 1, [True, True, True])
    if k in ("linear_fwd", "linear_bwd"):
        r, i, o = spec["rows"], spec["in"], spec["out"]
        x, w, b = rnd((r, i), dt), rnd((o, i), dt, 0.05), rnd((o,), dt)
        if k == "linear_fwd":
            return lambda: F.linear(x, w, b)
        dy = rnd((r, o), dt)

        def bwd():
            dx = dy @ w
            dw = dy.t() @ x
            db = dy.sum(0)
            return dx, dw, db
        return bwd
    if k in ("attention_fwd", "attention_bwd", "attention_fwdbwd"):
        bsz, h, nq, nk, d = spec["B"], spec["heads"], spec["Nq"], spec["Nk"], spec["D"]
        q, kk, v = rnd((bsz, h, nq, d), dt), rnd((bsz, h, nk, d), dt), rnd((bsz, h, nk, d), dt)
        causal = bool(spec.get("causal", False))
        if k == "attention_fwd":
            return lambda: F.scaled_dot_product_attention(q, kk, v, is_causal=causal)
        if k == "attention_fwdbwd":
            q.requires_grad_(True), kk.requires_grad_(True), v.requires_grad_(True)
            do = rnd((bsz, h, nq, d), dt)

            def fwdbwd():
                out = F.scaled_dot_product_attention(q, kk, v, is_causal=causal)
                return torch.autograd.grad(out, (q, kk, v), do)
            return fwdbwd
        q.requires_grad_(True), kk.requires_grad_(True), v.requires_grad_(True)
        out = F.scaled_dot_product_attention(q, kk, v, is_causal=causal)
        do = rnd(tuple(out.shape), dt)
        return lambda: torch.autograd.grad(out, (q, kk, v), do, retain_graph=True)
    if k in ("group_norm_fwd", "group_norm_bwd"):
        n, c, hw, g = spec["N"], spec["C"], spec["HW"], spec["groups"]
        x, gamma, beta = rnd((n, c, hw), dt), rnd((c,), dt), rnd((c,), dt)
        silu = bool(spec.get("silu", False))

        def fwd():
            y = F.group_norm(x, g, gamma, beta, spec.get("eps", 1e-5))
            return F.silu(y) if silu else y
        if k == "group_norm_fwd":
            return fwd
        x.requires_grad_(True), gamma.requires_grad_(True), beta.requires_grad_(True)
        out = fwd()
        do = rnd(tuple(out.shape), dt)
        return lambda: torch.autograd.grad(out, (x, gamma, beta), do, retain_graph=True)
    if k in ("layer_norm_fwd", "layer_norm_bwd"):
        r, c = spec["rows"], spec["C"]
        x, gamma, beta = rnd((r, c), dt), rnd((c,), dt), rnd((c,), dt)
        if k == "layer_norm_fwd":
            return lambda: F.layer_norm(x, (c,), gamma, beta, 1e-5)
        x.requires_grad_(True), gamma.requires_grad_(True), beta.requires_grad_(True)
        out = F.layer_norm(x, (c,), gamma, beta, 1e-5)
        do = rnd(tuple(out.shape), dt)
        return lambda: torch.autograd.grad(out, (x, gamma, beta), do, retain_graph=True)
    if k in ("geglu_fwd", "geglu_bwd"):
        r, f = spec["rows"], spec["F"]
        x = rnd((r, 2 * f), dt)

        def fwd():
            h, gate = x.chunk(2, dim=-1)
            return h * F.gelu(gate)
        if k == "geglu_fwd":
            return fwd
        x.requires_grad_(True)
        out = fwd()
        do = rnd(tuple(out.shape), dt)
        return lambda: torch.autograd.grad(out, (x,), do, retain_graph=True)
    if k == "adamw":
        n = spec["params"]
        p = [torch.zeros(n, device="cuda", dtype=torch.float32, requires_grad=True)]
        p[0].grad = rnd((n,), torch.float32)
        opt = torch.optim.AdamW(p, lr=1e-6, fused=True)
        return lambda: opt.step()
    if k == "adamw8bit":
        # bitsandbytes' 8-bit AdamW (its own block size), when installed; else this case reports n/a.
        try:
            import bitsandbytes as bnb
        except ImportError as e:
            raise ValueError(f"bitsandbytes is not installed ({e})")
        n, t = spec["params"], spec.get("tensors", 1)
        ps = [torch.zeros(n // t + (1 if i < n % t else 0), device="cuda", dtype=torch.float32, requires_grad=True)
              for i in range(t)]
        for p in ps:
            p.grad = rnd((p.numel(),), torch.float32, 1e-3)
        opt = bnb.optim.AdamW8bit(ps, lr=1e-6, min_8bit_size=0)
        return lambda: opt.step()
    if k in ("adamw_sr", "adamw8bit_sr"):
        raise ValueError("no PyTorch counterpart (bf16 parameters with stochastic rounding)")
    if k == "unet_train_fused":
        raise ValueError("no PyTorch counterpart run (the optimizer step fused into backward; compare unet_train)")
    if k in ("unet_train", "unet_sample"):
        return unet_case(spec)
    if k == "vae_decode":
        try:
            from vae_torch import make_vae_step  # scripts/torch_ref/vae_torch.py (plain PyTorch SD1.5 VAE decoder)
        except ImportError as e:
            raise ValueError(f"no PyTorch VAE reference: {e}")
        return make_vae_step(spec)
    raise ValueError(f"unknown case kind {k}")


def unet_case(spec):
    try:
        from unet_torch import make_unet_step  # scripts/torch_ref/unet_torch.py (plain PyTorch SD1.5 UNet)
    except ImportError as e:
        raise ValueError(f"no PyTorch UNet reference: {e}")
    return make_unet_step(spec)


def time_case(spec, min_runs=5, min_ms=500.0):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn = setup(spec)
    fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, total = [], 0.0
    while len(times) < min_runs or (total < min_ms and len(times) < 200):
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        t = e0.elapsed_time(e1)
        times.append(t)
        total += t
    times.sort()
    return times[len(times) // 2], torch.cuda.max_memory_allocated() / 2**20, len(times)


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    with open(sys.argv[1]) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    for r in rows:
        out = {"name": r["name"]}
        try:
            ms, peak, runs = time_case(r["spec"])
            out.update(ms=round(ms, 4), peak_mib=round(peak, 1), runs=runs)
        except Exception as e:  # report and go on: one missing comparison must not hide the others
            out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
