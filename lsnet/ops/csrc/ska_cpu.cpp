// SKA on CPU: one fused pass per (batch, channel) plane instead of nine tensor-wide passes.
//
// out[b, c, i, j] = sum_{u,v} x[b, c, i+u-1, j+v-1] * w[b, c % G, 3u+v, i, j]   (zero padding)
//
// The forward reads each output pixel's nine taps in one branch-free pass over the interior rows;
// the backward walks rows tap by tap over their valid column range. Both vectorise.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace {

void check_inputs(const at::Tensor& x, const at::Tensor& w) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 5, "ska_cpu: x (B, C, H, W) and w (B, G, 9, H, W) expected");
  TORCH_CHECK(!x.is_cuda() && !w.is_cuda(), "ska_cpu: CPU tensors expected");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), "ska_cpu: x and w must share a dtype");
  TORCH_CHECK(w.size(0) == x.size(0) && w.size(2) == 9 && w.size(3) == x.size(2) && w.size(4) == x.size(3) &&
              x.size(1) % w.size(1) == 0, "ska_cpu: shape mismatch");
}

// Each hot loop is compiled twice, for AVX2+FMA and for the baseline ISA, and the loader picks the
// one the CPU runs (GCC/Clang function multi-versioning); elsewhere only the baseline is built.
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SKA_ISA_CLONES __attribute__((target_clones("arch=haswell", "default")))
#endif
#endif
#ifndef SKA_ISA_CLONES
#define SKA_ISA_CLONES
#endif
#if defined(__GNUC__) || defined(__clang__)
#define SKA_INLINE inline __attribute__((always_inline))  // so each clone inlines its own ISA's copy
#else
#define SKA_INLINE inline
#endif

template <typename T>
SKA_INLINE T tap(const T* row, int64_t j, int64_t W) {
  return (j < 0 || j >= W) ? T(0) : row[j];
}

// Output pixel (i, j) with every tap bounds-checked: the image border.
template <typename T>
SKA_INLINE T border_pixel(const T* xp, const T* wp, int64_t i, int64_t j, int64_t H, int64_t W) {
  const int64_t HW = H * W;
  T sum = T(0);
  for (int64_t u = 0; u < 3; ++u) {
    const int64_t si = i + u - 1;
    if (si < 0 || si >= H) continue;
    for (int64_t v = 0; v < 3; ++v) sum += tap(xp + si * W, j + v - 1, W) * wp[(3 * u + v) * HW + i * W + j];
  }
  return sum;
}

// One plane. Rows 1..H-2 are one flat run over p = i * W + j, where the nine taps are the fixed
// offsets p + (u - 1) * W + (v - 1): a single long loop that vectorises even for 7- or 14-wide maps.
// In that run, columns 0 and W-1 read the neighbouring row's far end, so they are recomputed from
// their six taps inside the image, as are rows 0 and H-1; the four corners take the checked path.
template <typename T>
SKA_INLINE void forward_plane(const T* __restrict__ xp, const T* __restrict__ wp, T* __restrict__ op, int64_t H,
                              int64_t W) {
  const int64_t HW = H * W;
  if (H < 3 || W < 2) {
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) op[i * W + j] = border_pixel(xp, wp, i, j, H, W);
    return;
  }
  const T *w0 = wp, *w1 = wp + HW, *w2 = wp + 2 * HW, *w3 = wp + 3 * HW, *w4 = wp + 4 * HW, *w5 = wp + 5 * HW,
          *w6 = wp + 6 * HW, *w7 = wp + 7 * HW, *w8 = wp + 8 * HW;
  for (int64_t p = W + 1; p < (H - 1) * W - 1; ++p) {
    op[p] = xp[p - W - 1] * w0[p] + xp[p - W] * w1[p] + xp[p - W + 1] * w2[p] + xp[p - 1] * w3[p] + xp[p] * w4[p] +
            xp[p + 1] * w5[p] + xp[p + W - 1] * w6[p] + xp[p + W] * w7[p] + xp[p + W + 1] * w8[p];
  }
  for (int64_t i = 1; i + 1 < H; ++i) {
    const int64_t p = i * W, q = p + W - 1;  // first and last column: no left (right) taps
    op[p] = xp[p - W] * w1[p] + xp[p - W + 1] * w2[p] + xp[p] * w4[p] + xp[p + 1] * w5[p] + xp[p + W] * w7[p] +
            xp[p + W + 1] * w8[p];
    op[q] = xp[q - W - 1] * w0[q] + xp[q - W] * w1[q] + xp[q - 1] * w3[q] + xp[q] * w4[q] +
            xp[q + W - 1] * w6[q] + xp[q + W] * w7[q];
  }
  for (int64_t p = 1; p + 1 < W; ++p) {  // first row: no taps above
    op[p] = xp[p - 1] * w3[p] + xp[p] * w4[p] + xp[p + 1] * w5[p] + xp[p + W - 1] * w6[p] + xp[p + W] * w7[p] +
            xp[p + W + 1] * w8[p];
  }
  for (int64_t p = (H - 1) * W + 1; p + 1 < HW; ++p) {  // last row: no taps below
    op[p] = xp[p - W - 1] * w0[p] + xp[p - W] * w1[p] + xp[p - W + 1] * w2[p] + xp[p - 1] * w3[p] + xp[p] * w4[p] +
            xp[p + 1] * w5[p];
  }
  for (const int64_t i : {int64_t(0), H - 1})
    for (const int64_t j : {int64_t(0), W - 1}) op[i * W + j] = border_pixel(xp, wp, i, j, H, W);
}

// grad_x[p] = sum_k go[p - s_k] * w_k[p - s_k]: the forward's transpose, row by row, tap by tap.
template <typename T>
SKA_INLINE void grad_x_plane(const T* __restrict__ gop, const T* __restrict__ wp, T* __restrict__ gxp, int64_t H,
                             int64_t W) {
  const int64_t HW = H * W;
  for (int64_t i = 0; i < H; ++i) {
    T* __restrict__ row = gxp + i * W;
    for (int64_t j = 0; j < W; ++j) row[j] = T(0);
    for (int64_t k = 0; k < 9; ++k) {
      const int64_t di = k / 3 - 1, dj = k % 3 - 1;
      const int64_t si = i - di;  // the output pixel that read x(i, j) through tap k
      if (si < 0 || si >= H) continue;
      const T* __restrict__ gorow = gop + si * W - dj;
      const T* __restrict__ wrow = wp + k * HW + si * W - dj;
      const int64_t j0 = dj > 0 ? 1 : 0, j1 = dj < 0 ? W - 1 : W;
      for (int64_t j = j0; j < j1; ++j) row[j] += gorow[j] * wrow[j];
    }
  }
}

// grad_w[k][p] += go[p] * x[p + s_k] for one channel of the group (the caller sums the group).
template <typename T>
SKA_INLINE void grad_w_accumulate(const T* __restrict__ gop, const T* __restrict__ xp, T* __restrict__ gwp,
                                  int64_t H, int64_t W) {
  const int64_t HW = H * W;
  for (int64_t k = 0; k < 9; ++k) {
    const int64_t di = k / 3 - 1, dj = k % 3 - 1;
    const int64_t j0 = dj < 0 ? 1 : 0, j1 = dj > 0 ? W - 1 : W;
    for (int64_t i = 0; i < H; ++i) {
      const int64_t si = i + di;
      if (si < 0 || si >= H) continue;
      T* __restrict__ out = gwp + k * HW + i * W;
      const T* __restrict__ gorow = gop + i * W;
      const T* __restrict__ xrow = xp + si * W + dj;
      for (int64_t j = j0; j < j1; ++j) out[j] += gorow[j] * xrow[j];
    }
  }
}

#define SKA_DEFINE_CLONES(T)                                                                                      \
  SKA_ISA_CLONES void forward_plane_isa(const T* xp, const T* wp, T* op, int64_t H, int64_t W) {                  \
    forward_plane<T>(xp, wp, op, H, W);                                                                           \
  }                                                                                                               \
  SKA_ISA_CLONES void grad_x_plane_isa(const T* gop, const T* wp, T* gxp, int64_t H, int64_t W) {                 \
    grad_x_plane<T>(gop, wp, gxp, H, W);                                                                          \
  }                                                                                                               \
  SKA_ISA_CLONES void grad_w_accumulate_isa(const T* gop, const T* xp, T* gwp, int64_t H, int64_t W) {            \
    grad_w_accumulate<T>(gop, xp, gwp, H, W);                                                                     \
  }
SKA_DEFINE_CLONES(float)
SKA_DEFINE_CLONES(double)

}  // namespace

at::Tensor ska_forward(const at::Tensor& x_in, const at::Tensor& w_in) {
  check_inputs(x_in, w_in);
  auto x = x_in.contiguous();
  auto w = w_in.contiguous();
  auto out = at::empty_like(x);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), G = w.size(1), R = C / G, HW = H * W;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ska_forward", [&] {
    const scalar_t* xd = x.data_ptr<scalar_t>();
    const scalar_t* wd = w.data_ptr<scalar_t>();
    scalar_t* od = out.data_ptr<scalar_t>();
    // Tasks run group by group (t -> batch b, group g, channel c = r * G + g), so the R channels
    // that share one set of kernels follow each other while those kernels are in cache.
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t bg = t / R, plane = (bg / G) * C + (t % R) * G + bg % G;
        forward_plane_isa(xd + plane * HW, wd + bg * 9 * HW, od + plane * HW, H, W);
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
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {  // task order as in the forward
      for (int64_t t = begin; t < end; ++t) {
        const int64_t bg = t / R, plane = (bg / G) * C + (t % R) * G + bg % G;
        grad_x_plane_isa(god + plane * HW, wd + bg * 9 * HW, gxd + plane * HW, H, W);
      }
    });
    // grad_w sums over the channels of a kernel group (c = r * G + g): one task per (batch, group).
    at::parallel_for(0, B * G, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bg = begin; bg < end; ++bg) {
        const int64_t b = bg / G, g = bg % G;
        scalar_t* gwp = gwd + bg * 9 * HW;
        std::fill(gwp, gwp + 9 * HW, scalar_t(0));
        for (int64_t r = 0; r < R; ++r) {
          const int64_t plane = b * C + r * G + g;
          grad_w_accumulate_isa(god + plane * HW, xd + plane * HW, gwp, H, W);
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
