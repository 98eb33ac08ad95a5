import os
import subprocess
import sys
import textwrap

import pytest
import torch

from lsnet.ops import ska, ska_backend, ska_torch, set_ska_backend
from lsnet.ops.ska import resolve_backend, ska_flat


def ska_naive(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Literal loop over the definition: out[b,c,i,j] = sum_uv x[b,c,i+u-1,j+v-1] w[b,c%G,3u+v,i,j]."""
    b, c, h, wd = x.shape
    groups = w.shape[1]
    out = torch.zeros_like(x)
    for ch in range(c):
        for u in range(3):
            for v in range(3):
                for i in range(h):
                    for j in range(wd):
                        ii, jj = i + u - 1, j + v - 1
                        if 0 <= ii < h and 0 <= jj < wd:
                            out[:, ch, i, j] += x[:, ch, ii, jj] * w[:, ch % groups, 3 * u + v, i, j]
    return out


@pytest.mark.parametrize('shape,groups', [((2, 16, 5, 7), 2), ((1, 24, 4, 3), 3), ((1, 8, 1, 6), 1),
                                          ((2, 12, 3, 3), 12)])
def test_matches_naive_loop(shape, groups):
    x = torch.randn(shape, dtype=torch.float64)
    w = torch.randn(shape[0], groups, 9, *shape[2:], dtype=torch.float64)
    torch.testing.assert_close(ska_torch(x, w), ska_naive(x, w))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('shape,groups', [((2, 16, 5, 7), 4), ((3, 6, 1, 9), 3), ((2, 4, 9, 1), 2),
                                          ((1, 8, 1, 1), 8), ((2, 128, 14, 14), 16)])
def test_flat_form_gives_the_padded_view_forms_sums(shape, groups, dtype):
    # the ONNX form reads each tap as one window of the flattened input: border taps (which would read
    # the neighbouring row or plane) must contribute exactly nothing, so the sums match term by term
    x = torch.randn(shape, dtype=dtype) + 3.0  # no zeros: a wrong neighbour would show
    w = torch.randn(shape[0], groups, 9, *shape[2:], dtype=dtype)
    assert torch.equal(ska_flat(x, w), ska_torch(x, w))
    if dtype == torch.float64 and shape[1] <= 16:
        torch.testing.assert_close(ska_flat(x, w), ska_naive(x, w))


def test_groups_are_interleaved():
    # channel c must use kernel group c % G: give group 1 zero kernels and check channels 1, 3, 5.
    x = torch.randn(1, 6, 4, 4)
    w = torch.randn(1, 2, 9, 4, 4)
    w[:, 1] = 0
    out = ska_torch(x, w)
    assert out[:, 1::2].abs().max() == 0
    assert out[:, 0::2].abs().max() > 0


def test_gradcheck_float64():
    x = torch.randn(2, 8, 4, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 9, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ska_torch, (x, w))
    assert torch.autograd.gradgradcheck(ska_torch, (x, w))


def test_no_unfolded_copy_in_memory():
    # No single allocation of the torch path exceeds ~1x of x; an unfold allocates 9x x at once.
    x = torch.randn(1, 64, 64, 64)
    w = torch.randn(1, 8, 9, 64, 64)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        ska_torch(x, w)
    largest = max(evt.cpu_memory_usage for evt in prof.events())
    assert 0 < largest < 2 * x.numel() * x.element_size()


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r'\(1, 16, 4, 4\)'):
        ska(torch.randn(1, 16, 4, 4), torch.randn(1, 3, 9, 4, 4))
    with pytest.raises(ValueError, match='expects'):
        ska(torch.randn(16, 4, 4), torch.randn(1, 2, 9, 4, 4))


def test_backend_selection():
    x, w = torch.randn(1, 8, 3, 3), torch.randn(1, 1, 9, 3, 3)
    with pytest.raises(ValueError, match='valid'):
        set_ska_backend('cuda-magic')
    with ska_backend('torch'):
        torch.testing.assert_close(ska(x, w), ska_torch(x, w))
    if not torch.cuda.is_available():
        with ska_backend('triton'), pytest.raises(RuntimeError, match='needs CUDA'):
            ska(x, w)


def test_autocast_and_mixed_dtypes():
    x = torch.randn(2, 16, 6, 6)
    w = torch.randn(2, 2, 9, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = ska(x.bfloat16(), w)  # w stays fp32 under autocast (it comes from GroupNorm)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ska_torch(x, w), atol=0.1, rtol=0.05)


def test_torch_compile_fullgraph():
    x = torch.randn(2, 16, 6, 7, requires_grad=True)
    w = torch.randn(2, 2, 9, 6, 7, requires_grad=True)
    compiled = torch.compile(ska, backend='aot_eager', fullgraph=True)
    out = compiled(x, w)
    torch.testing.assert_close(out, ska_torch(x, w))
    grads = torch.autograd.grad(out.square().sum(), (x, w))
    ref = torch.autograd.grad(ska_torch(x, w).square().sum(), (x, w))
    for got, want in zip(grads, ref):
        torch.testing.assert_close(got, want)


TRITON_CHECK = textwrap.dedent('''
    import torch
    from lsnet.ops.ska import ska_torch
    from lsnet.ops.ska_triton import ska_triton
    torch.manual_seed(0)
    for (b, c, h, w), groups in [((2, 16, 5, 7), 2), ((1, 24, 9, 4), 3), ((1, 64, 3, 11), 8)]:
        x = torch.randn(b, c, h, w, requires_grad=True)
        wt = torch.randn(b, groups, 9, h, w, requires_grad=True)
        ref = ska_torch(x, wt)
        go = torch.randn_like(ref)
        ref_grads = torch.autograd.grad(ref, (x, wt), go)
        out = ska_triton(x, wt)
        grads = torch.autograd.grad(out, (x, wt), go)
        torch.testing.assert_close(out, ref)
        for got, want in zip(grads, ref_grads):
            torch.testing.assert_close(got, want)
    # B * G beyond CUDA's 65,535 limit of a second grid axis (LSNet-T at batch 2048 has 32 groups)
    x = torch.randn(4100, 16, 1, 2, requires_grad=True)
    wt = torch.randn(4100, 16, 9, 1, 2, requires_grad=True)
    out = ska_triton(x, wt)
    torch.testing.assert_close(out, ska_torch(x, wt))
    grads = torch.autograd.grad(out.sum(), (x, wt))
    for got, want in zip(grads, torch.autograd.grad(ska_torch(x, wt).sum(), (x, wt))):
        torch.testing.assert_close(got, want)
    # the first-contact check passes for the real kernels
    from lsnet.ops.ska import first_contact_ok
    assert first_contact_ok('triton', torch.device('cpu'), torch.float32, strict=True)
    print('TRITON-OK')
''')


@pytest.mark.slow
def test_triton_kernels_in_interpreter():
    """The Triton kernels' arithmetic, checked on CPU through Triton's interpreter."""
    pytest.importorskip('triton')
    env = dict(os.environ, TRITON_INTERPRET='1')
    result = subprocess.run([sys.executable, '-c', TRITON_CHECK], env=env, capture_output=True, text=True,
                            timeout=600)
    assert 'TRITON-OK' in result.stdout, result.stderr[-3000:]


def test_launch_beyond_grid_limit_is_named():
    pytest.importorskip('triton')
    from lsnet.ops.ska_triton import MAX_PROGRAMS, check_launch_shape
    check_launch_shape(2048, 32, 14 * 14)  # LSNet-T at the papers' batch: fine
    with pytest.raises(ValueError, match='grid limit'):
        check_launch_shape(65536, 512, 64 * 64 * 2)
    assert MAX_PROGRAMS == 2 ** 31 - 1


def test_first_contact_falls_back_once_with_a_warning(monkeypatch):
    """A compiled kernel that disagrees with the torch path, or fails to launch, is caught by the
    first-contact check: one warning naming the error, then the torch path; strict mode raises."""
    import warnings
    import importlib
    ska_module = importlib.import_module('lsnet.ops.ska')  # the module, not the function it exports
    monkeypatch.setattr(ska_module, '_first_contact', {})
    cpu = torch.device('cpu')

    def wrong(x, w):
        return ska_torch(x, w) * 1.01

    def crashing(x, w):
        raise RuntimeError('Triton Error [CUDA]: invalid argument')

    with pytest.warns(RuntimeWarning, match=r'forward differs.*using the PyTorch path'):
        assert not ska_module.first_contact_ok('triton', cpu, torch.float32, implementation=wrong)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the verdict is kept: no second check, no second warning
        assert not ska_module.first_contact_ok('triton', cpu, torch.float32, implementation=wrong)
    with pytest.raises(RuntimeError, match='failed its check.*forward differs'):
        ska_module.first_contact_ok('triton', cpu, torch.float32, strict=True)
    with pytest.warns(RuntimeWarning, match='invalid argument'):
        assert not ska_module.first_contact_ok('triton', cpu, torch.float64, implementation=crashing)
    with torch.inference_mode():  # a model's forward may run the check under inference mode
        assert ska_module.first_contact_ok('triton', cpu, torch.float16, implementation=ska_torch)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (run on the device machine)')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16])
def test_triton_on_gpu(dtype):
    from lsnet.ops.ska_triton import ska_triton
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    for (b, c, h, w) in [(4, 128, 14, 14), (2, 64, 25, 42), (3, 40, 7, 9)]:
        x = torch.randn(b, c, h, w, device='cuda', dtype=dtype, requires_grad=True)
        wt = torch.randn(b, c // 8, 9, h, w, device='cuda', dtype=dtype, requires_grad=True)
        out = ska_triton(x, wt)
        go = torch.randn_like(out)
        grads = torch.autograd.grad(out, (x, wt), go)
        x64, w64 = x.detach().double().requires_grad_(), wt.detach().double().requires_grad_()
        ref = ska_torch(x64, w64)
        ref_grads = torch.autograd.grad(ref, (x64, w64), go.double())
        torch.testing.assert_close(out.double(), ref, **tol)
        for got, want in zip(grads, ref_grads):
            torch.testing.assert_close(got.double(), want, **tol)
        assert resolve_backend(x, wt) == 'triton'  # 'auto' dispatch picks the Triton kernels on CUDA
        assert torch.equal(ska(x, wt), out)  # and runs them (first contact passed, no fallback)
    compiled = torch.compile(lambda a, b: ska(a, b).sum(), fullgraph=True)
    compiled(x, wt).backward()




def _has_cpp() -> bool:
    try:
        from lsnet.ops import ska_cpu  # noqa: F401
    except ImportError:
        return False
    return True


def test_compiled_cpu_kernels_were_built():
    """`make setup` compiles the CPU kernels and says so when it cannot; in CI a missing build fails."""
    if _has_cpp():
        return
    message = 'compiled CPU SKA extension not built: see .venv/ska-cpu-build.log'
    if os.environ.get('CI'):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.skipif(not _has_cpp(), reason='compiled CPU extension not built: see .venv/ska-cpu-build.log')
class TestCompiledCPU:
    @pytest.mark.parametrize('shape,groups', [((2, 16, 5, 7), 2), ((1, 24, 1, 6), 3), ((2, 8, 9, 1), 8)])
    def test_matches_torch_path(self, shape, groups):
        from lsnet.ops.ska_cpu import ska_cpu
        x = torch.randn(shape, requires_grad=True)
        w = torch.randn(shape[0], groups, 9, *shape[2:], requires_grad=True)
        out = ska_cpu(x, w)
        torch.testing.assert_close(out, ska_torch(x, w))
        go = torch.randn_like(out)
        for got, want in zip(torch.autograd.grad(out, (x, w), go), torch.autograd.grad(ska_torch(x, w), (x, w), go)):
            torch.testing.assert_close(got, want)

    def test_gradcheck_float64(self):
        from lsnet.ops.ska_cpu import ska_cpu
        x = torch.randn(2, 8, 4, 5, dtype=torch.float64, requires_grad=True)
        w = torch.randn(2, 2, 9, 4, 5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(ska_cpu, (x, w))

    def test_custom_op_only_where_autograd_or_tracing_needs_it(self):
        x = torch.randn(2, 16, 6, 6, requires_grad=True)
        w = torch.randn(2, 2, 9, 6, 6, requires_grad=True)

        def ops_run(grad: bool):
            with ska_backend('cpp'), torch.set_grad_enabled(grad), \
                    torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
                out = ska(x, w)
            return out, {event.name for event in profile.events()}

        out, ran = ops_run(grad=False)  # inference: the kernel directly, same result
        assert not any('ska_cpu' in name for name in ran) and not out.requires_grad
        torch.testing.assert_close(out, ska_torch(x, w).detach())
        out, ran = ops_run(grad=True)  # training: the op, so autograd has its backward
        assert any('ska_cpu' in name for name in ran) and out.grad_fn is not None

    def test_auto_dispatch_and_compile(self):
        x, w = torch.randn(1, 16, 6, 6), torch.randn(1, 2, 9, 6, 6)
        with ska_backend('cpp'):
            torch.testing.assert_close(ska(x, w), ska_torch(x, w))
        compiled = torch.compile(ska, backend='aot_eager', fullgraph=True)
        torch.testing.assert_close(compiled(x, w), ska_torch(x, w))
        with ska_backend('cpp'), pytest.raises(RuntimeError, match='float32/float64 CPU'):
            ska(x.bfloat16(), w)


@pytest.mark.slow
def test_lsconv_under_inductor_compile():
    """The whole LS convolution compiles with the default backend (C++ codegen on CPU)."""
    from lsnet.models.lsnet import LSConv
    module = LSConv(16).eval()
    x = torch.randn(2, 16, 7, 9)
    with torch.no_grad():
        want = module(x)
        got = torch.compile(module)(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
