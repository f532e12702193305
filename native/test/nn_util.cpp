#include "nn_util.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace dbt::test {

void randomize_params(nn::ParamSet& ps, uint64_t seed) {
  for (nn::Param& p : ps.all()) {
    const Shape& s = p.value.shape();
    Tensor r;
    if (s.ndim() >= 2) {
      const double a = std::sqrt(3.0 / double(s.prod(1, s.ndim())));
      r = rand_tensor(s, seed++, -a, a, p.value.dtype());
    } else if (p.key.size() >= 7 && p.key.compare(p.key.size() - 7, 7, ".weight") == 0) {
      r = rand_tensor(s, seed++, 0.8, 1.2, p.value.dtype());
    } else {
      r = rand_tensor(s, seed++, -0.2, 0.2, p.value.dtype());
    }
    std::memcpy(p.value.raw(), r.raw(), p.value.nbytes());
  }
}

namespace {

Tensor run_analytic(const std::function<Tensor(bool)>& fwd, const std::function<void(const Tensor&)>& bwd,
                    nn::ParamSet& ps, uint64_t seed) {
  ps.enable_grads(true);
  ps.zero_grads();
  Tensor y = fwd(true);
  Tensor r = rand_tensor(y.shape(), seed, -1, 1, DType::f64);
  bwd(r);
  return r;
}

double rel_diff(double a, double b) { return std::fabs(a - b) / std::max(1e-3, std::max(std::fabs(a), std::fabs(b))); }

}  // namespace

void check_grads_full(const std::string& what, const std::function<Tensor(bool)>& fwd,
                      const std::function<void(const Tensor&)>& bwd, nn::ParamSet& ps,
                      const std::vector<GradInput>& inputs, double rtol) {
  Tensor r = run_analytic(fwd, bwd, ps, 4242);
  auto loss = [&] { return dot(fwd(false), r); };
  for (nn::Param& p : ps.all()) {
    Tensor num = numeric_grad(loss, p.value, 1e-5);
    expect_close(p.grad, num, 1e-7, rtol * 10, what + ": d/d " + p.key);
  }
  for (const GradInput& in : inputs) {
    Tensor num = numeric_grad(loss, *in.value, 1e-5);
    expect_close(*in.analytic, num, 1e-7, rtol * 10, what + ": d/d " + in.name);
  }
}

void check_grads_directional(const std::string& what, const std::function<Tensor(bool)>& fwd,
                             const std::function<void(const Tensor&)>& bwd, nn::ParamSet& ps,
                             const std::vector<GradInput>& inputs, int every, double rtol) {
  Tensor r = run_analytic(fwd, bwd, ps, 777);
  auto loss = [&] { return dot(fwd(false), r); };
  const double h = 1e-5;
  uint64_t seed = 9000;
  // directional derivative of loss along v applied to the given tensors
  auto check = [&](const std::string& name, const std::vector<std::pair<Tensor*, const Tensor*>>& targets) {
    std::vector<Tensor> dirs;
    double analytic = 0;
    for (auto& [x, g] : targets) {
      dirs.push_back(rand_tensor(x->shape(), seed++, -1, 1, DType::f64));
      analytic += dot(*g, dirs.back());
    }
    auto shift = [&](double s) {
      for (size_t i = 0; i < targets.size(); i++) {
        double* xp = targets[i].first->data<double>();
        const double* vp = dirs[i].data<double>();
        for (int64_t j = 0; j < dirs[i].numel(); j++) xp[j] += s * vp[j];
      }
    };
    shift(h);
    const double lp = loss();
    shift(-2 * h);
    const double lm = loss();
    shift(h);
    const double numeric = (lp - lm) / (2 * h);
    if (rel_diff(analytic, numeric) > rtol * 100 && std::fabs(analytic - numeric) > 1e-7) {
      std::ostringstream m;
      m.precision(10);
      m << what << ": directional derivative along " << name << ": backward " << analytic << ", finite differences "
        << numeric;
      throw TestFailure(m.str());
    }
  };
  std::vector<std::pair<Tensor*, const Tensor*>> all;
  int i = 0;
  for (nn::Param& p : ps.all()) {
    all.push_back({&p.value, &p.grad});
    if (i++ % every == 0) check(p.key, {{&p.value, &p.grad}});
  }
  check("all parameters", all);
  for (const GradInput& in : inputs) check(in.name, {{in.value, in.analytic}});
}

}  // namespace dbt::test
