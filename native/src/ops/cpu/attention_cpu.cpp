// Attention, fast CPU version. Tasks are (batch, head), so memory is O(chunk * keys), never Nk * Nq.
// Forward: K^T and V packed once per head; per chunk of kQChunk queries S = scale Q_c K^T [kQChunk, Nk],
// E = exp(S - rowmax) with its row sums (lse kept), O_c = (E V) / rowsum.
// Backward: key blocks of kKBlock outside (the block's K^T, V^T, K packed once; its dK, dV rows accumulate
// over the query chunks in order), query chunks inside; [kQChunk, kKBlock] tiles:
//   P = exp(S - lse), dV_b += P^T dO_c, dP = dO_c V_b^T, dS' = scale P (dP - rowdot(dO_c, O_c)),
//   dQ_c += dS' K_b (over key blocks in order), dK_b += dS'^T Q_c.
#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "ops/attention.h"
#include "ops/cpu/sgemm.h"
#include "ops/cpu/vec_kernels.h"

namespace dbt::ops::cpu {
using dbt::cpu::vexp_shifted;
using dbt::cpu::vexp_shifted_sum;
using dbt::cpu::vrow_dot;
using dbt::cpu::vrow_max;
using dbt::cpu::gemm_packed_b;
using dbt::cpu::pack_b;
using dbt::cpu::packed_b_size;
using dbt::cpu::PackedB;
using dbt::cpu::sgemm;

namespace {

constexpr int64_t kQChunk = 48;  // 4 tiles of the 12-row kernel, 6 of the 8-row one
// Keys per block: the [kQChunk, kKBlock] score (and gradient) tiles, 128 KB each, stay in L2.
constexpr int64_t kKBlock = 512;

struct Geo {
  int64_t B, Nq, Nk, H, D, Dv;
  float scale;
  Geo(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p)
      : B(q.dim(0)), Nq(q.dim(1)), Nk(k.dim(1)), H(p.heads), D(q.dim(2) / p.heads), Dv(v.dim(2) / p.heads),
        scale(p.scale != 0.0f ? p.scale : float(1.0 / std::sqrt(double(q.dim(2) / p.heads)))) {}
};


// Masks scores of keys after the query (causal) to -inf. S holds rows*Nk scores; row r is the query
// `off + r` positions after the block's first key (off may be negative).
void apply_causal(float* S, int64_t rows, int64_t Nk, int64_t off) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = std::max<int64_t>(0, off + r + 1); j < Nk; j++) S[r * Nk + j] = -INFINITY;
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, Tensor& out,
                       Tensor* lse) {
  const Geo g(q, k, v, p);
  const float* Q = q.data<float>();
  const float* K = k.data<float>();
  const float* V = v.data<float>();
  float* O = out.data<float>();
  float* L = lse ? lse->data<float>() : nullptr;
  const int64_t ldq = g.H * g.D, ldv = g.H * g.Dv;
  const int64_t kt_size = packed_b_size(g.D, g.Nk), v_size = packed_b_size(g.Nk, g.Dv);
  // One task per (batch, head): K^T and V are packed once and reused by every query chunk.
  parallel_for(g.B * g.H, 1, [&](int64_t t0, int64_t t1) {
    Tensor buf = Tensor::empty(Shape{kQChunk * g.Nk + kt_size + v_size});
    float* S = buf.data<float>();
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / g.H, h = t % g.H;
      const PackedB kt = pack_b(true, g.D, g.Nk, K + b * g.Nk * ldq + h * g.D, ldq, S + kQChunk * g.Nk);
      const PackedB vp = pack_b(false, g.Nk, g.Dv, V + b * g.Nk * ldv + h * g.Dv, ldv, S + kQChunk * g.Nk + kt_size);
      for (int64_t i0 = 0; i0 < g.Nq; i0 += kQChunk) {
        const int64_t rows = std::min(kQChunk, g.Nq - i0);
        gemm_packed_b(rows, Q + (b * g.Nq + i0) * ldq + h * g.D, ldq, false, g.scale, kt, 0.0f, S, g.Nk);
        if (p.causal) apply_causal(S, rows, g.Nk, i0);
        float inv[kQChunk];
        for (int64_t r = 0; r < rows; r++) {
          float* s = S + r * g.Nk;
          const float m = vrow_max(s, g.Nk);  // finite: key 0 is never masked
          const float sum = vexp_shifted_sum(s, g.Nk, m);
          inv[r] = 1.0f / sum;
          if (L) L[(b * g.H + h) * g.Nq + i0 + r] = m + std::log(sum);
        }
        // O_c = (exp(S - m) V) / sum: normalising the Dv outputs, not the Nk probabilities
        float* Oc = O + (b * g.Nq + i0) * ldv + h * g.Dv;
        gemm_packed_b(rows, S, g.Nk, false, 1.0f, vp, 0.0f, Oc, ldv);
        for (int64_t r = 0; r < rows; r++)
          for (int64_t d = 0; d < g.Dv; d++) Oc[r * ldv + d] *= inv[r];
      }
    }
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv) {
  const Geo g(q, k, v, p);
  const float* Q = q.data<float>();
  const float* K = k.data<float>();
  const float* V = v.data<float>();
  const float* O = out.data<float>();
  const float* L = lse.data<float>();
  const float* DO = dout.data<float>();
  float* DQ = dq ? dq->data<float>() : nullptr;
  float* DK = dk ? dk->data<float>() : nullptr;
  float* DV = dv ? dv->data<float>() : nullptr;
  const int64_t ldq = g.H * g.D, ldv = g.H * g.Dv;
  const int64_t nb = std::min(kKBlock, g.Nk);
  const int64_t kt_size = packed_b_size(g.D, nb), vt_size = packed_b_size(g.Dv, nb), k_size = packed_b_size(nb, g.D);
  parallel_for(g.B * g.H, 1, [&](int64_t t0, int64_t t1) {
    Tensor buf = Tensor::empty(Shape{2 * kQChunk * nb + kt_size + vt_size + k_size + g.Nq});
    float* S = buf.data<float>();
    float* dP = S + kQChunk * nb;
    float* packs = dP + kQChunk * nb;
    float* Drow = packs + kt_size + vt_size + k_size;  // rowdot(dO_i, O_i) per query
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / g.H, h = t % g.H;
      const float* Qh = Q + b * g.Nq * ldq + h * g.D;
      const float* Oh = O + b * g.Nq * ldv + h * g.Dv;
      const float* DOh = DO + b * g.Nq * ldv + h * g.Dv;
      const float* Lh = L + (b * g.H + h) * g.Nq;
      float* DQh = DQ ? DQ + b * g.Nq * ldq + h * g.D : nullptr;
      for (int64_t i = 0; i < g.Nq; i++) Drow[i] = vrow_dot(DOh + i * ldv, Oh + i * ldv, g.Dv);
      // Key blocks outside, query chunks inside: a block's K, V are packed once, its dK, dV rows
      // accumulate over the query chunks in order, and the [chunk, block] score tiles stay in L2.
      for (int64_t j0 = 0; j0 < g.Nk; j0 += nb) {
        const int64_t nk = std::min(nb, g.Nk - j0);
        const float* Kb = K + (b * g.Nk + j0) * ldq + h * g.D;
        const float* Vb = V + (b * g.Nk + j0) * ldv + h * g.Dv;
        float* DKb = DK ? DK + (b * g.Nk + j0) * ldq + h * g.D : nullptr;
        float* DVb = DV ? DV + (b * g.Nk + j0) * ldv + h * g.Dv : nullptr;
        const PackedB kt = pack_b(true, g.D, nk, Kb, ldq, packs);              // K^T for S = Q K^T
        const PackedB vt = pack_b(true, g.Dv, nk, Vb, ldv, packs + kt_size);   // V^T for dP = dO V^T
        const PackedB kk = pack_b(false, nk, g.D, Kb, ldq, packs + kt_size + vt_size);  // K for dQ = dS K
        for (int64_t i0 = 0; i0 < g.Nq; i0 += kQChunk) {
          const int64_t rows = std::min(kQChunk, g.Nq - i0);
          const float* Qc = Qh + i0 * ldq;
          const float* DOc = DOh + i0 * ldv;
          const bool first = i0 == 0;
          gemm_packed_b(rows, Qc, ldq, false, g.scale, kt, 0.0f, S, nk);
          if (p.causal) apply_causal(S, rows, nk, i0 - j0);
          for (int64_t r = 0; r < rows; r++) vexp_shifted(S + r * nk, nk, Lh[i0 + r]);
          if (DVb) sgemm(true, false, nk, g.Dv, rows, 1.0f, S, nk, DOc, ldv, first ? 0.0f : 1.0f, DVb, ldv);
          if (!DQh && !DKb) continue;
          gemm_packed_b(rows, DOc, ldv, false, 1.0f, vt, 0.0f, dP, nk);
          // dP becomes scale * dS (the scale of both products below, so they run with alpha 1 and dK's
          // transposed operand is read in place)
          for (int64_t r = 0; r < rows; r++) {
            const float di = Drow[i0 + r];
            float* dp = dP + r * nk;
            const float* s = S + r * nk;
            for (int64_t j = 0; j < nk; j++) dp[j] = g.scale * (s[j] * (dp[j] - di));
          }
          if (DQh) gemm_packed_b(rows, dP, nk, false, 1.0f, kk, j0 == 0 ? 0.0f : 1.0f, DQh + i0 * ldq, ldq);
          if (DKb) sgemm(true, false, nk, g.D, rows, 1.0f, dP, nk, Qc, ldq, first ? 0.0f : 1.0f, DKb, ldq);
        }
      }
    }
  });
}

}  // namespace dbt::ops::cpu
