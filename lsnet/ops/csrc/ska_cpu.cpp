// SKA on CPU: one fused pass per (batch, channel) plane instead of nine tensor-wide passes.
//
// out[b, c, i, j] = sum_{u,v} x[b, c, i+u-1, j+v-1] * w[b, c % G, 3u+v, i, j]   (zero padding)
//
// The forward reads each output pixel's nine taps in one branch-free pass over the interior columns;
// the backward walks rows tap by tap over their valid column range. Both vectorise.
#include <torch/extension.h>
#include <ATen/Parallel.h>

namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 5, "ska_cpu: x (B, C, H, W) and w (B, G, 9, H, W) expected");
  TORCH_CHECK(!x.is_cuda() && !w.is_cuda(), "ska_cpu: CPU tensors expected");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), "ska_cpu: x and w must share a dtype");
  TORCH_CHECK(w.size(0) == x.size(0) && w.size(2) == 9 && w.size(3) == x.size(2) && w.size(4) == x.size(3) &&
              x.size(1) % w.size(1) == 0, "ska_cpu: shape mismatch");
}

template <typename T>
inline T tap(const T* row, int64_t j, int64_t W) {
  return (j < 0 || j >= W) ? T(0) : row[j];
}

// One output row: the three input rows (a zero row outside the image) and the nine weight rows are
// combined in a single pass, branch-free in the interior columns so the loop vectorises.
template <typename T>
void forward_plane(const T* __restrict__ xp, const T* __restrict__ wp, T* __restrict__ op, int64_t H, int64_t W,
                   const T* __restrict__ zeros) {
  const int64_t HW = H * W;
  for (int64_t i = 0; i < H; ++i) {
    const T* __restrict__ x0 = i > 0 ? xp + (i - 1) * W : zeros;
    const T* __restrict__ x1 = xp + i * W;
    const T* __restrict__ x2 = i + 1 < H ? xp + (i + 1) * W : zeros;
    const T* __restrict__ w = wp + i * W;
    T* __restrict__ orow = op + i * W;
    for (int64_t j = 1; j + 1 < W; ++j) {
      orow[j] = x0[j - 1] * w[j] + x0[j] * w[HW + j] + x0[j + 1] * w[2 * HW + j] +
                x1[j - 1] * w[3 * HW + j] + x1[j] * w[4 * HW + j] + x1[j + 1] * w[5 * HW + j] +
                x2[j - 1] * w[6 * HW + j] + x2[j] * w[7 * HW + j] + x2[j + 1] * w[8 * HW + j];
    }
    const int64_t edges[2] = {0, W - 1};
    for (int64_t e = 0; e < (W > 1 ? 2 : 1); ++e) {
      const int64_t j = edges[e];
      orow[j] = tap(x0, j - 1, W) * w[j] + tap(x0, j, W) * w[HW + j] + tap(x0, j + 1, W) * w[2 * HW + j] +
                tap(x1, j - 1, W) * w[3 * HW + j] + tap(x1, j, W) * w[4 * HW + j] +
                tap(x1, j + 1, W) * w[5 * HW + j] + tap(x2, j - 1, W) * w[6 * HW + j] +
                tap(x2, j, W) * w[7 * HW + j] + tap(x2, j + 1, W) * w[8 * HW + j];
    }
  }
}

}  // namespace

at::Tensor ska_forward(const at::Tensor& x_in, const at::Tensor& w_in) {
  check_inputs(x_in, w_in);
  auto x = x_in.contiguous();
  auto w = w_in.contiguous();
  auto out = at::empty_like(x);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = w.size(1), HW = H * W;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ska_forward", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = w.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> zeros(W, scalar_t(0));
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t b = plane / C, c = plane % C;
        forward_plane(xd + plane * HW, wd + (b * G + c % G) * 9 * HW, od + plane * HW, H, W, zeros.data());
      }
    });
  });
  return out;
}

std::vector<at::Tensor> ska_backward(const at::Tensor& go_in, const at::Tensor& x_in, const at::Tensor& w_in) {
  check_inputs(x_in, w_in);
  auto go = go_in.contiguous();
  auto x = x_in.contiguous();
  auto w = w_in.contiguous();
  auto grad_x = at::empty_like(x);
  auto grad_w = at::empty_like(w);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = w.size(1), R = C / G, HW = H * W;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ska_backward", [&] {
    const scalar_t* god = go.data_ptr<scalar_t>();
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = w.data_ptr<scalar_t>();
    scalar_t* gxd = grad_x.data_ptr<scalar_t>();
    scalar_t* gwd = grad_w.data_ptr<scalar_t>();
    // grad_x[p] = sum_k go[p - s_k] * w_k[p - s_k]: the forward's transpose, one plane per task.
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t b = plane / C, c = plane % C;
        const scalar_t* gop = god + plane * HW;
        const scalar_t* wp = wd + (b * G + c % G) * 9 * HW;
        scalar_t* gxp = gxd + plane * HW;
        for (int64_t i = 0; i < H; ++i) {
          scalar_t* __restrict__ row = gxp + i * W;
          for (int64_t j = 0; j < W; ++j) row[j] = scalar_t(0);
          for (int64_t k = 0; k < 9; ++k) {
            const int64_t di = k / 3 - 1, dj = k % 3 - 1;
            const int64_t si = i - di;  // the output pixel that read x(i, j) through tap k
            if (si < 0 || si >= H) continue;
            const scalar_t* __restrict__ gorow = gop + si * W - dj;
            const scalar_t* __restrict__ wrow = wp + k * HW + si * W - dj;
            const int64_t j0 = dj > 0 ? 1 : 0, j1 = dj < 0 ? W - 1 : W;
            for (int64_t j = j0; j < j1; ++j) row[j] += gorow[j] * wrow[j];
          }
        }
      }
    });
    // grad_w[k][p] = sum_r go_r[p] * x_r[p + s_k]: reduced over a group's channels in one task.
    at::parallel_for(0, B * G, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bg = begin; bg < end; ++bg) {
        const int64_t b = bg / G, g = bg % G;
        scalar_t* gwp = gwd + bg * 9 * HW;
        for (int64_t n = 0; n < 9 * HW; ++n) gwp[n] = scalar_t(0);
        for (int64_t r = 0; r < R; ++r) {
          const int64_t plane = b * C + r * G + g;
          const scalar_t* gop = god + plane * HW;
          const scalar_t* xp = xd + plane * HW;
          for (int64_t k = 0; k < 9; ++k) {
            const int64_t di = k / 3 - 1, dj = k % 3 - 1;
            const int64_t j0 = dj < 0 ? 1 : 0, j1 = dj > 0 ? W - 1 : W;
            for (int64_t i = 0; i < H; ++i) {
              const int64_t si = i + di;
              if (si < 0 || si >= H) continue;
              scalar_t* __restrict__ out = gwp + k * HW + i * W;
              const scalar_t* __restrict__ gorow = gop + i * W;
              const scalar_t* __restrict__ xrow = xp + si * W + dj;
              for (int64_t j = j0; j < j1; ++j) out[j] += gorow[j] * xrow[j];
            }
          }
        }
      }
    });
  });
  return {grad_x, grad_w};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &ska_forward, "SKA forward (CPU)");
  m.def("backward", &ska_backward, "SKA backward (CPU): grad_x, grad_w");
}
