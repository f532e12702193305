// Attention reference: the full score matrix per (batch, head) in double (small sizes only).
#include <cmath>
#include <vector>

#include "ops/attention.h"
#include "ops/ref/ref_util.h"

namespace dbt::ops::ref {
namespace {

struct Geo {
  int64_t B, Nq, Nk, H, D, Dv;
  double scale;
  Geo(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p)
      : B(q.dim(0)), Nq(q.dim(1)), Nk(k.dim(1)), H(p.heads), D(q.dim(2) / p.heads), Dv(v.dim(2) / p.heads),
        scale(p.scale != 0.0f ? double(p.scale) : 1.0 / std::sqrt(double(q.dim(2) / p.heads))) {}
};

// P[i][j] (softmax of scaled scores) and lse[i] for one (b, h).
template <class T>
void probs(const Geo& g, const T* Q, const T* K, int64_t b, int64_t h, bool causal, std::vector<double>& P,
           std::vector<double>& lse) {
  P.assign(size_t(g.Nq * g.Nk), 0.0);
  lse.assign(size_t(g.Nq), 0.0);
  for (int64_t i = 0; i < g.Nq; i++) {
    double m = -INFINITY;
    for (int64_t j = 0; j < g.Nk; j++) {
      double s = -INFINITY;
      if (!causal || j <= i) {
        s = 0;
        for (int64_t d = 0; d < g.D; d++)
          s += double(Q[(b * g.Nq + i) * g.H * g.D + h * g.D + d]) * double(K[(b * g.Nk + j) * g.H * g.D + h * g.D + d]);
        s *= g.scale;
      }
      P[size_t(i * g.Nk + j)] = s;
      m = std::fmax(m, s);
    }
    double sum = 0;
    for (int64_t j = 0; j < g.Nk; j++) sum += std::exp(P[size_t(i * g.Nk + j)] - m);
    for (int64_t j = 0; j < g.Nk; j++) P[size_t(i * g.Nk + j)] = std::exp(P[size_t(i * g.Nk + j)] - m) / sum;
    lse[size_t(i)] = m + std::log(sum);
  }
}

template <class T>
void fwd(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, Tensor& out, Tensor* lse) {
  Geo g(q, k, v, p);
  const T* V = v.data<T>();
  T* O = out.data<T>();
  std::vector<double> P, L;
  for (int64_t b = 0; b < g.B; b++)
    for (int64_t h = 0; h < g.H; h++) {
      probs(g, q.data<T>(), k.data<T>(), b, h, p.causal, P, L);
      for (int64_t i = 0; i < g.Nq; i++) {
        for (int64_t e = 0; e < g.Dv; e++) {
          double s = 0;
          for (int64_t j = 0; j < g.Nk; j++)
            s += P[size_t(i * g.Nk + j)] * double(V[(b * g.Nk + j) * g.H * g.Dv + h * g.Dv + e]);
          O[(b * g.Nq + i) * g.H * g.Dv + h * g.Dv + e] = T(s);
        }
        if (lse) lse->data<T>()[(b * g.H + h) * g.Nq + i] = T(L[size_t(i)]);
      }
    }
}

template <class T>
void bwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, const AttentionParams& p, Tensor* dq,
         Tensor* dk, Tensor* dv) {
  Geo g(q, k, v, p);
  const T* Q = q.data<T>();
  const T* K = k.data<T>();
  const T* V = v.data<T>();
  const T* DO = dout.data<T>();
  std::vector<double> P, L;
  std::vector<double> gq(size_t(q.numel())), gk(size_t(k.numel())), gv(size_t(v.numel()));
  for (int64_t b = 0; b < g.B; b++)
    for (int64_t h = 0; h < g.H; h++) {
      probs(g, Q, K, b, h, p.causal, P, L);
      auto qi = [&](int64_t i, int64_t d) { return (b * g.Nq + i) * g.H * g.D + h * g.D + d; };
      auto ki = [&](int64_t j, int64_t d) { return (b * g.Nk + j) * g.H * g.D + h * g.D + d; };
      auto vi = [&](int64_t j, int64_t e) { return (b * g.Nk + j) * g.H * g.Dv + h * g.Dv + e; };
      auto oi = [&](int64_t i, int64_t e) { return (b * g.Nq + i) * g.H * g.Dv + h * g.Dv + e; };
      for (int64_t i = 0; i < g.Nq; i++) {
        std::vector<double> dP(size_t(g.Nk));
        double Di = 0;
        for (int64_t j = 0; j < g.Nk; j++) {
          double s = 0;
          for (int64_t e = 0; e < g.Dv; e++) s += double(DO[oi(i, e)]) * double(V[vi(j, e)]);
          dP[size_t(j)] = s;
          Di += P[size_t(i * g.Nk + j)] * s;
        }
        for (int64_t j = 0; j < g.Nk; j++) {
          double pij = P[size_t(i * g.Nk + j)], ds = pij * (dP[size_t(j)] - Di) * g.scale;
          for (int64_t e = 0; e < g.Dv; e++) gv[size_t(vi(j, e))] += pij * double(DO[oi(i, e)]);
          for (int64_t d = 0; d < g.D; d++) {
            gq[size_t(qi(i, d))] += ds * double(K[ki(j, d)]);
            gk[size_t(ki(j, d))] += ds * double(Q[qi(i, d)]);
          }
        }
      }
    }
  if (dq) for (int64_t i = 0; i < q.numel(); i++) dq->data<T>()[i] = T(gq[size_t(i)]);
  if (dk) for (int64_t i = 0; i < k.numel(); i++) dk->data<T>()[i] = T(gk[size_t(i)]);
  if (dv) for (int64_t i = 0; i < v.numel(); i++) dv->data<T>()[i] = T(gv[size_t(i)]);
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, Tensor& out,
                       Tensor* lse) {
  DBT_REF_FLOAT_SWITCH(q.dtype(), "attention_forward", fwd<T>(q, k, v, p, out, lse));
}
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const AttentionParams& p, Tensor* dq, Tensor* dk, Tensor* dv) {
  DBT_REF_FLOAT_SWITCH(q.dtype(), "attention_backward", bwd<T>(q, k, v, dout, p, dq, dk, dv));
}

}  // namespace dbt::ops::ref
