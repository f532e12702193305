"""Plain-PyTorch SD1.5 VAE decoder (LDM AutoencoderKL: post_quant_conv, conv_in to 512 channels, middle
ResBlock / single-head attention / ResBlock, four levels of three ResBlocks with nearest 2x upsampling and a
3x3 conv between them, GroupNorm(32, eps 1e-6) + SiLU, conv_out to RGB) for the vae_decode case of
scripts/gpu-check.sh. Random weights (PyTorch's default init), attention through F.scaled_dot_product_attention.
What is timed matches native/bench/cuda/bench_cuda_vae.cpp: one decode without autograd.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.o = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        n = self.norm(x)
        tok = lambda t: t.flatten(2).transpose(1, 2)[:, None]  # [B, 1, HW, C]
        a = F.scaled_dot_product_attention(tok(self.q(n)), tok(self.k(n)), tok(self.v(n)))
        return x + self.o(a[:, 0].transpose(1, 2).reshape(b, c, h, w))


class Decoder(nn.Module):
    def __init__(self, ch=128, mults=(1, 2, 4, 4), nres=2, z=4):
        super().__init__()
        c = ch * mults[-1]
        self.post_quant = nn.Conv2d(z, z, 1)
        self.conv_in = nn.Conv2d(z, c, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(c, c), AttnBlock(c), ResBlock(c, c))
        layers = []
        for lvl in reversed(range(len(mults))):
            for _ in range(nres + 1):
                layers.append(ResBlock(c, ch * mults[lvl]))
                c = ch * mults[lvl]
            if lvl != 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]
        self.up = nn.Sequential(*layers)
        self.norm_out, self.conv_out = norm(c), nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, zl):
        h = self.up(self.mid(self.conv_in(self.post_quant(zl))))
        return self.conv_out(F.silu(self.norm_out(h)))


def make_vae_step(spec):
    dt = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[spec.get("dtype", "bf16")]
    lat, batch = spec.get("latent", 64), spec.get("batch", 1)
    model = Decoder().to(device="cuda", dtype=dt).eval()
    zl = (torch.rand(batch, 4, lat, lat, device="cuda") * 2 - 1).to(dt)

    @torch.no_grad()
    def decode():
        return model(zl)
    return decode
