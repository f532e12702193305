"""Plain-PyTorch SD1.5 UNet (LDM openaimodel layout: 320 channels, mults 1/2/4/4, two ResBlocks per level,
SpatialTransformers at the first three levels and in the middle, 8 heads, 768-dim context) for the
unet_train / unet_sample cases of scripts/gpu-check.sh. Random weights (PyTorch's default init), bf16,
attention through F.scaled_dot_product_attention, per-block checkpointing with torch.utils.checkpoint
(ResBlocks and SpatialTransformers, as dbt does). What is timed matches native/bench/cuda/bench_cuda_unet.cpp:
  unet_train:  gradients set to None, forward + backward, optimizer step (bitsandbytes AdamW8bit when
               installed, else fused AdamW), batch `batch`
  unet_sample: one CFG step, forward of [uncond, cond] without autograd, eps = u + cfg (c - u)
"""
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-5)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(temb, cout)
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb, ctx):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class Attention(nn.Module):
    def __init__(self, dim, kv_dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(kv_dim, dim, bias=False)
        self.v = nn.Linear(kv_dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx):
        b, n, c = x.shape
        split = lambda t: t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)
        o = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(ctx)), split(self.v(ctx)))
        return self.o(o.transpose(1, 2).reshape(b, n, c))


class SpatialTransformer(nn.Module):
    def __init__(self, c, heads, ctx_dim):
        super().__init__()
        self.norm, self.proj_in, self.proj_out = norm(c), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.n1, self.attn1 = nn.LayerNorm(c), Attention(c, c, heads)
        self.n2, self.attn2 = nn.LayerNorm(c), Attention(c, ctx_dim, heads)
        self.n3, self.ff_in, self.ff_out = nn.LayerNorm(c), nn.Linear(c, 8 * c), nn.Linear(4 * c, c)

    def forward(self, x, emb, ctx):
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x)).flatten(2).transpose(1, 2)
        n1 = self.n1(t)
        t = t + self.attn1(n1, n1)
        t = t + self.attn2(self.n2(t), ctx)
        a, gate = self.ff_in(self.n3(t)).chunk(2, dim=-1)
        t = t + self.ff_out(a * F.gelu(gate))
        return x + self.proj_out(t.transpose(1, 2).reshape(b, c, h, w))


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x, emb, ctx):
        return self.conv(x)


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, emb, ctx):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, mc=320, mults=(1, 2, 4, 4), nres=2, attn_ds=(1, 2, 4), heads=8, ctx_dim=768):
        super().__init__()
        self.mc, temb = mc, 4 * mc
        self.time = nn.Sequential(nn.Linear(mc, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(4, mc, 3, padding=1)
        self.inputs, skips, ch, ds = nn.ModuleList(), [mc], mc, 1
        for lvl, m in enumerate(mults):
            for _ in range(nres):
                blk = [ResBlock(ch, m * mc, temb)]
                ch = m * mc
                if ds in attn_ds:
                    blk.append(SpatialTransformer(ch, heads, ctx_dim))
                self.inputs.append(nn.ModuleList(blk))
                skips.append(ch)
            if lvl != len(mults) - 1:
                self.inputs.append(nn.ModuleList([Down(ch)]))
                skips.append(ch)
                ds *= 2
        self.middle = nn.ModuleList([ResBlock(ch, ch, temb), SpatialTransformer(ch, heads, ctx_dim), ResBlock(ch, ch, temb)])
        self.outputs = nn.ModuleList()
        for lvl in reversed(range(len(mults))):
            for i in range(nres + 1):
                blk = [ResBlock(ch + skips.pop(), mults[lvl] * mc, temb)]
                ch = mults[lvl] * mc
                if ds in attn_ds:
                    blk.append(SpatialTransformer(ch, heads, ctx_dim))
                if lvl > 0 and i == nres:
                    blk.append(Up(ch))
                    ds //= 2
                self.outputs.append(nn.ModuleList(blk))
        self.out_norm, self.out_conv = norm(ch), nn.Conv2d(ch, 4, 3, padding=1)
        self.checkpointing = False

    def run(self, layers, h, emb, ctx):
        for layer in layers:
            if self.checkpointing and self.training and not isinstance(layer, (Down, Up)):
                h = checkpoint(layer, h, emb, ctx, use_reentrant=False)
            else:
                h = layer(h, emb, ctx)
        return h

    def forward(self, x, t, ctx):
        half = self.mc // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        emb = self.time(torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(x.dtype))
        h = self.conv_in(x)
        hs = [h]
        for blk in self.inputs:
            h = self.run(blk, h, emb, ctx)
            hs.append(h)
        h = self.run(self.middle, h, emb, ctx)
        for blk in self.outputs:
            h = self.run(blk, torch.cat([h, hs.pop()], dim=1), emb, ctx)
        return self.out_conv(F.silu(self.out_norm(h)))


def make_optimizer(params, name):
    """bitsandbytes' AdamW8bit for "adamw8bit" when installed, else PyTorch's fused AdamW (said on stderr)."""
    if name is None:
        return None
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb
            return bnb.optim.AdamW8bit(params, lr=1e-6)
        except ImportError:
            print("unet_train: bitsandbytes is not installed; PyTorch side uses fused AdamW (f32 states)",
                  file=sys.stderr)
    return torch.optim.AdamW(params, lr=1e-6, fused=True)


def make_unet_step(spec):
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[spec.get("dtype", "bf16")]
    lat, batch = spec.get("latent", 64), spec.get("batch", 1)
    model = UNet().to(device="cuda", dtype=dt)
    rnd = lambda *s: (torch.rand(s, device="cuda") * 2 - 1).to(dt)
    if spec["kind"] == "unet_train":
        model.train()
        model.checkpointing = bool(spec.get("checkpointing", True))
        x, ctx, dy = rnd(batch, 4, lat, lat), rnd(batch, 77, 768), rnd(batch, 4, lat, lat) * 0.01
        t = torch.tensor([100.0 + 600.0 * i for i in range(batch)], device="cuda")
        params = list(model.parameters())
        opt = make_optimizer(params, spec.get("optimizer"))

        def train():
            for p in params:
                p.grad = None
            model(x, t, ctx).backward(dy)
            if opt is not None:
                opt.step()
        return train
    model.eval()
    cfg = float(spec.get("cfg", 7.5))
    x, ctx = rnd(2 * batch, 4, lat, lat), rnd(2 * batch, 77, 768)
    t = torch.full((2 * batch,), 100.0, device="cuda")

    @torch.no_grad()
    def sample():
        u, c = model(x, t, ctx).chunk(2)
        return u + cfg * (c - u)
    return sample
