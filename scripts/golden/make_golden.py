#!/usr/bin/env python3
"""Golden fixtures for test/reference: a compact, independent PyTorch (float64) implementation of the SD1.x
UNet, CLIP text transformer and VAE for the `tiny` architecture, run on deterministic hash-generated weights
and inputs (the same generator as test/reference/params.ts), outputs written to
test/reference/fixtures/golden-tiny.json.

Written from the semantics of CompVis ldm (openaimodel.py, attention.py, model.py, AutoencoderKL) and HF
CLIPTextModel, using torch's own functional ops (group_norm, layer_norm, conv2d, scaled_dot_product_attention,
gelu, interpolate, pad) wherever they exist. Run once by a developer with a CPU torch; tests never need torch:

    python3 scripts/golden/make_golden.py
"""
import base64
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'test', 'reference', 'fixtures', 'golden-tiny.json')

# --- the tiny architecture (src/model/arch.ts TINY_ARCH) ---------------------------------------------------
UNET = dict(in_ch=4, out_ch=4, mc=32, mult=[1, 2], nres=1, attn_ds=[1, 2], heads=2, depth=1, ctx=32, groups=32)
VAE = dict(in_ch=3, out_ch=3, ch=32, mult=[1, 2], nres=1, z=4, embed=4, groups=32)
CLIP = dict(vocab=514, d=32, layers=2, heads=2, inter=64, pos=77, eps=1e-5)


# --- deterministic values, bit-identical to test/reference/params.ts --------------------------------------
def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode('utf-8'):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def mix32(x):
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def hash_uniform(key, n):
    h = fnv1a32(key)
    return torch.tensor([(mix32((h + i * 0x9E3779B9) & 0xFFFFFFFF) >> 8) / 8388608.0 - 1.0 for i in range(n)])


class Params:
    def __init__(self, overrides=None):
        self.cache = {}
        self.overrides = overrides or {}

    def __call__(self, key, *shape):
        if key not in self.cache:
            n = math.prod(shape)
            if key in self.overrides:
                v = torch.tensor(self.overrides[key])
            else:
                u = hash_uniform(key, n)
                if len(shape) >= 2:
                    v = u * math.sqrt(3 / math.prod(shape[1:]))
                elif key.endswith('.weight'):
                    v = 1 + 0.2 * u
                else:
                    v = 0.2 * u
            self.cache[key] = (shape, v.reshape(shape))
        got, v = self.cache[key]
        assert tuple(got) == tuple(shape), f'{key}: {got} vs {shape}'
        return v


def conv(P, key, x, cin, cout, k, stride=1, padding=None):
    return F.conv2d(x, P(key + '.weight', cout, cin, k, k), P(key + '.bias', cout), stride=stride,
                    padding=(k // 2) if padding is None else padding)


def lin(P, key, x, cin, cout, bias=True):
    return F.linear(x, P(key + '.weight', cout, cin), P(key + '.bias', cout) if bias else None)


def gnorm(P, key, x, groups, eps):
    c = x.shape[1]
    return F.group_norm(x, groups, P(key + '.weight', c), P(key + '.bias', c), eps)


def lnorm(P, key, x, eps=1e-5):
    d = x.shape[-1]
    return F.layer_norm(x, (d,), P(key + '.weight', d), P(key + '.bias', d), eps)


def heads_split(x, h):  # b n (h d) -> b h n d
    b, n, hd = x.shape
    return x.reshape(b, n, h, hd // h).transpose(1, 2)


def heads_merge(x):  # b h n d -> b n (h d)
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


# --- UNet ----------------------------------------------------------------------------------------------------
def t_embedding(t, dim):
    # LDM: float32 regardless of the model's dtype; cos first.
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).double()


def res_block(P, k, x, emb, cin, cout):
    g = UNET['groups']
    h = conv(P, k + '.in_layers.2', F.silu(gnorm(P, k + '.in_layers.0', x, g, 1e-5)), cin, cout, 3)
    h = h + lin(P, k + '.emb_layers.1', F.silu(emb), emb.shape[1], cout)[:, :, None, None]
    h = conv(P, k + '.out_layers.3', F.silu(gnorm(P, k + '.out_layers.0', h, g, 1e-5)), cout, cout, 3)
    return (x if cin == cout else conv(P, k + '.skip_connection', x, cin, cout, 1)) + h


def cross_attn(P, k, x, ctx, dim, cdim):
    h = UNET['heads']
    q = heads_split(lin(P, k + '.to_q', x, dim, dim, False), h)
    kk = heads_split(lin(P, k + '.to_k', ctx, cdim, dim, False), h)
    v = heads_split(lin(P, k + '.to_v', ctx, cdim, dim, False), h)
    a = F.scaled_dot_product_attention(q, kk, v, scale=(dim // h) ** -0.5)
    return lin(P, k + '.to_out.0', heads_merge(a), dim, dim)


def spatial_transformer(P, k, x, ctx):
    b, c, hh, ww = x.shape
    h = conv(P, k + '.proj_in', gnorm(P, k + '.norm', x, UNET['groups'], 1e-6), c, c, 1)
    h = h.reshape(b, c, hh * ww).transpose(1, 2)
    for d in range(UNET['depth']):
        bk = f'{k}.transformer_blocks.{d}'
        n1 = lnorm(P, bk + '.norm1', h)
        h = h + cross_attn(P, bk + '.attn1', n1, n1, c, c)
        h = h + cross_attn(P, bk + '.attn2', lnorm(P, bk + '.norm2', h), ctx, c, ctx.shape[-1])
        hidden, gate = lin(P, bk + '.ff.net.0.proj', lnorm(P, bk + '.norm3', h), c, 8 * c).chunk(2, dim=-1)
        h = h + lin(P, bk + '.ff.net.2', hidden * F.gelu(gate), 4 * c, c)
    h = h.transpose(1, 2).reshape(b, c, hh, ww)
    return conv(P, k + '.proj_out', h, c, c, 1) + x


def unet(P, x, t, ctx):
    U, pre = UNET, 'model.diffusion_model.'
    mc = U['mc']
    emb = lin(P, pre + 'time_embed.0', t_embedding(t, mc), mc, 4 * mc)
    emb = lin(P, pre + 'time_embed.2', F.silu(emb), 4 * mc, 4 * mc)
    h = conv(P, pre + 'input_blocks.0.0', x, U['in_ch'], mc, 3)
    skips, chans, blk, ds, ch = [h], [mc], 1, 1, mc
    for level, m in enumerate(U['mult']):
        for _ in range(U['nres']):
            k = f'{pre}input_blocks.{blk}'
            h = res_block(P, k + '.0', h, emb, ch, m * mc)
            ch = m * mc
            if ds in U['attn_ds']:
                h = spatial_transformer(P, k + '.1', h, ctx)
            skips.append(h); chans.append(ch); blk += 1
        if level != len(U['mult']) - 1:
            h = conv(P, f'{pre}input_blocks.{blk}.0.op', h, ch, ch, 3, stride=2, padding=1)
            skips.append(h); chans.append(ch); blk += 1; ds *= 2
    h = res_block(P, pre + 'middle_block.0', h, emb, ch, ch)
    h = spatial_transformer(P, pre + 'middle_block.1', h, ctx)
    h = res_block(P, pre + 'middle_block.2', h, emb, ch, ch)
    blk = 0
    for level in reversed(range(len(U['mult']))):
        m = U['mult'][level]
        for i in range(U['nres'] + 1):
            k = f'{pre}output_blocks.{blk}'
            cin = ch + chans.pop()
            h = res_block(P, k + '.0', torch.cat([h, skips.pop()], dim=1), emb, cin, m * mc)
            ch, j = m * mc, 1
            if ds in U['attn_ds']:
                h = spatial_transformer(P, f'{k}.{j}', h, ctx); j += 1
            if level and i == U['nres']:
                h = conv(P, f'{k}.{j}.conv', F.interpolate(h, scale_factor=2, mode='nearest'), ch, ch, 3)
                ds //= 2
            blk += 1
    h = F.silu(gnorm(P, pre + 'out.0', h, U['groups'], 1e-5))
    return conv(P, pre + 'out.2', h, mc, U['out_ch'], 3)


# --- CLIP text -----------------------------------------------------------------------------------------------
def clip_text(P, ids, clip_skip):
    C, pre = CLIP, 'cond_stage_model.transformer.text_model.'
    d, s = C['d'], ids.shape[1]
    h = F.embedding(ids, P(pre + 'embeddings.token_embedding.weight', C['vocab'], d)) \
        + P(pre + 'embeddings.position_embedding.weight', C['pos'], d)[:s]
    hidden_states = [h]
    for l in range(C['layers']):
        k = f'{pre}encoder.layers.{l}'
        x = lnorm(P, k + '.layer_norm1', h, C['eps'])
        q, kk, v = (heads_split(lin(P, f'{k}.self_attn.{n}_proj', x, d, d), C['heads']) for n in 'qkv')
        a = F.scaled_dot_product_attention(q, kk, v, is_causal=True)
        h = h + lin(P, k + '.self_attn.out_proj', heads_merge(a), d, d)
        m = lin(P, k + '.mlp.fc1', lnorm(P, k + '.layer_norm2', h, C['eps']), d, C['inter'])
        h = h + lin(P, k + '.mlp.fc2', m * torch.sigmoid(1.702 * m), C['inter'], d)
        hidden_states.append(h)
    return lnorm(P, pre + 'final_layer_norm', hidden_states[-clip_skip], C['eps'])


# --- VAE -----------------------------------------------------------------------------------------------------
def vae_res(P, k, x, cin, cout):
    g = VAE['groups']
    h = conv(P, k + '.conv1', F.silu(gnorm(P, k + '.norm1', x, g, 1e-6)), cin, cout, 3)
    h = conv(P, k + '.conv2', F.silu(gnorm(P, k + '.norm2', h, g, 1e-6)), cout, cout, 3)
    return (x if cin == cout else conv(P, k + '.nin_shortcut', x, cin, cout, 1)) + h


def vae_attn(P, k, x):
    b, c, hh, ww = x.shape
    h = gnorm(P, k + '.norm', x, VAE['groups'], 1e-6)
    q, kk, v = (conv(P, f'{k}.{n}', h, c, c, 1).reshape(b, 1, c, hh * ww).transpose(2, 3) for n in 'qkv')
    a = F.scaled_dot_product_attention(q, kk, v).transpose(2, 3).reshape(b, c, hh, ww)
    return x + conv(P, k + '.proj_out', a, c, c, 1)


def vae_mid(P, k, h, c):
    return vae_res(P, k + '.block_2', vae_attn(P, k + '.attn_1', vae_res(P, k + '.block_1', h, c, c)), c, c)


def vae_encode(P, img):
    V, pre = VAE, 'first_stage_model.encoder.'
    h = conv(P, pre + 'conv_in', img, V['in_ch'], V['ch'], 3)
    cin = V['ch']
    for level, m in enumerate(V['mult']):
        for b in range(V['nres']):
            h = vae_res(P, f'{pre}down.{level}.block.{b}', h, cin, V['ch'] * m)
            cin = V['ch'] * m
        if level != len(V['mult']) - 1:
            h = conv(P, f'{pre}down.{level}.downsample.conv', F.pad(h, (0, 1, 0, 1)), cin, cin, 3, stride=2, padding=0)
    h = vae_mid(P, pre + 'mid', h, cin)
    h = conv(P, pre + 'conv_out', F.silu(gnorm(P, pre + 'norm_out', h, V['groups'], 1e-6)), cin, 2 * V['z'], 3)
    moments = conv(P, 'first_stage_model.quant_conv', h, 2 * V['z'], 2 * V['embed'], 1)
    mean, logvar = torch.chunk(moments, 2, dim=1)
    return mean, torch.clamp(logvar, -30.0, 20.0)


def vae_decode(P, z):
    V, pre = VAE, 'first_stage_model.decoder.'
    h = conv(P, 'first_stage_model.post_quant_conv', z, V['embed'], V['z'], 1)
    cin = V['ch'] * V['mult'][-1]
    h = vae_mid(P, pre + 'mid', conv(P, pre + 'conv_in', h, V['z'], cin, 3), cin)
    for level in reversed(range(len(V['mult']))):
        for b in range(V['nres'] + 1):
            h = vae_res(P, f'{pre}up.{level}.block.{b}', h, cin, V['ch'] * V['mult'][level])
            cin = V['ch'] * V['mult'][level]
        if level != 0:
            h = conv(P, f'{pre}up.{level}.upsample.conv', F.interpolate(h, scale_factor=2, mode='nearest'), cin, cin, 3)
    return conv(P, pre + 'conv_out', F.silu(gnorm(P, pre + 'norm_out', h, V['groups'], 1e-6)), cin, V['out_ch'], 3)


# --- fixtures ------------------------------------------------------------------------------------------------
def rand_input(key, *shape):
    return hash_uniform(key, math.prod(shape)).reshape(shape)


def enc(t):
    t = t.detach().contiguous().to(torch.float64)
    return {'shape': list(t.shape), 'f64': base64.b64encode(t.numpy().astype('<f8').tobytes()).decode()}


def token_ids(rows, length, vocab, bos, eos, seed):
    ids = []
    for r in range(rows):
        n = 3 + (fnv1a32(f'{seed}.{r}') % 20)  # prompt length before padding
        body = [mix32(fnv1a32(seed) + r * 977 + i) % (vocab - 2) for i in range(n)]
        row = ([bos] + body + [eos] + [eos] * length)[:length]
        ids.append(row)
    return ids


def main():
    cases = {}
    P = Params()
    for name, xs, ts, cs in [('unet', (2, 4, 8, 8), [999.0, 37.0], (2, 77, 32)), ('unet_odd', (1, 4, 6, 10), [500.5], (1, 5, 32))]:
        x, ctx = rand_input(f'input.{name}.x', *xs), rand_input(f'input.{name}.context', *cs)
        cases[name] = {'inputs': {'x': {'key': f'input.{name}.x', 'shape': list(xs)}, 't': ts,
                                  'context': {'key': f'input.{name}.context', 'shape': list(cs)}},
                       'outputs': {'eps': enc(unet(P, x, torch.tensor(ts), ctx))}}
    ids = token_ids(2, 77, CLIP['vocab'], 512, 513, 'ids')
    cases['clip'] = {'inputs': {'ids': ids}, 'outputs': {f'skip{k}': enc(clip_text(P, torch.tensor(ids), k)) for k in (1, 2)}}
    for name, shape in [('vae_encode', (1, 3, 16, 16)), ('vae_encode_odd', (1, 3, 15, 13))]:
        mean, logvar = vae_encode(P, rand_input(f'input.{name}.img', *shape))
        cases[name] = {'inputs': {'img': {'key': f'input.{name}.img', 'shape': list(shape)}},
                       'outputs': {'mean': enc(mean), 'logvar': enc(logvar)}}
    clamp_bias = [0.1, -0.1, 0.2, -0.2, 45.0, -45.0, 0.3, -60.0]
    Pc = Params({'first_stage_model.quant_conv.bias': clamp_bias})
    mean, logvar = vae_encode(Pc, rand_input('input.vae_encode.img', 1, 3, 16, 16))
    cases['vae_encode_clamped'] = {'inputs': {'img': {'key': 'input.vae_encode.img', 'shape': [1, 3, 16, 16]}},
                                   'overrides': {'first_stage_model.quant_conv.bias': clamp_bias},
                                   'outputs': {'mean': enc(mean), 'logvar': enc(logvar)}}
    z = rand_input('input.vae_decode.z', 1, 4, 8, 8)
    cases['vae_decode'] = {'inputs': {'z': {'key': 'input.vae_decode.z', 'shape': [1, 4, 8, 8]}},
                           'outputs': {'img': enc(vae_decode(P, z))}}
    doc = {'about': 'Generated by scripts/golden/make_golden.py (PyTorch float64) for the tiny arch; '
                    'weights and inputs from the hash generator of test/reference/params.ts.',
           'torch': torch.__version__,
           'param_shapes': {k: list(s) for k, (s, _) in sorted(P.cache.items())},
           'cases': cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(doc, f, indent=1)
    print(f'wrote {os.path.relpath(OUT)} ({os.path.getsize(OUT)} bytes, {len(P.cache)} parameters)', file=sys.stderr)


if __name__ == '__main__':
    main()
