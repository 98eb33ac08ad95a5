"""LSNet: See Large, Focus Small (Wang et al., CVPR 2025, arXiv:2503.23135).

Restates https://github.com/jameslahm/lsnet at commit cbe737c92b7c43ecf02d08545a07f03f1010177c
(model/lsnet.py, and detection/model/lsnet.py / segmentation/model/lsnet.py for the dense form);
the released weights of that repository load unchanged.

One implementation for ImageNet classification (timm API, distillation head) and dense prediction
(OpenMMLab backbone knobs). Module and parameter names follow the released checkpoints, so those
load unchanged. The stage-4 attention bias is resized to the actual token grid, so any input size works,
either as a table over offsets or, as the released detectors and segmenters do, as a whole matrix.
"""
from typing import Any, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from timm.layers import DropPath, SqueezeExcite, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ..ops import ska
from .backbone_base import (StageMapsBackbone, StageModel, fuse_conv_bn, in_layout_of, merge_bn_args,
                            reject_unknown_kwargs, resolve_arch)
from .variants import LSNET_ARCHS

# SKA dispatches on dtype and device in Python, the layout on the input's strides: FX tracing records
# each as one call instead.
torch.fx.wrap('ska')
torch.fx.wrap('in_layout_of')

__all__ = ['LSNet']


def meets_only_centre_tap(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` on ``x`` is the matrix product with its kernel's centre tap that it amounts to
    on a 1x1 map (an odd kernel zero-padded by half its size; dense or depth-wise), and that product is the
    faster form: on CPU, where oneDNN's convolution kernels take 4-40x as long for those maps, which
    LSNet's last stage has at 64x64 inputs. Only eager runs qualify: a traced, exported or compiled graph
    keeps the convolution, which holds for every size."""
    if isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() \
            or torch.compiler.is_compiling():
        return False
    kernel_h, kernel_w = conv.kernel_size
    return (x.shape[-2:] == (1, 1) and x.device.type == 'cpu' and kernel_h % 2 == 1 and kernel_w % 2 == 1
            and conv.padding == (kernel_h // 2, kernel_w // 2) and conv.padding_mode == 'zeros'
            and conv.dilation == (1, 1)
            and (conv.groups == 1 or conv.groups == conv.in_channels == conv.out_channels))


def centre_tap_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` (no bias) where :func:`meets_only_centre_tap`: a matrix product, or a per-channel
    scale for a depth-wise conv."""
    kernel_h, kernel_w = conv.kernel_size
    # a 1x1 kernel is its own centre: a view, whose gradient needs no zero-filled kernel-sized buffer
    centre = conv.weight.flatten(1) if conv.kernel_size == (1, 1) else conv.weight[:, :, kernel_h // 2, kernel_w // 2]
    if conv.groups == 1:
        return F.linear(x.flatten(1), centre).view(x.shape[0], conv.out_channels, 1, 1)
    return x * centre.view(1, conv.out_channels, 1, 1)


class ConvBN(nn.Sequential):
    """Conv2d without bias followed by BatchNorm2d (keys ``c`` and ``bn``); on a 1x1 CPU map the
    convolution runs as the product it amounts to (:func:`centre_tap_conv`)."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1, bn_weight_init: float = 1.0):
        super().__init__()
        self.add_module('c', nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False))
        self.add_module('bn', nn.BatchNorm2d(out_chs))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # TorchScript keeps the convolution
            if meets_only_centre_tap(x, self.c):
                return self.bn(centre_tap_conv(x, self.c))
        return self.bn(self.c(x))

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.c, self.bn)


class BNLinear(nn.Sequential):
    """BatchNorm1d followed by Linear: the classifier heads (keys ``bn`` and ``l``)."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.02):
        super().__init__()
        self.add_module('bn', nn.BatchNorm1d(in_features))
        self.add_module('l', nn.Linear(in_features, out_features))
        trunc_normal_(self.l.weight, std=std)
        nn.init.zeros_(self.l.bias)

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        bn, linear = self.bn, self.l
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        shift = bn.bias - bn.running_mean * scale
        fused = nn.Linear(linear.in_features, linear.out_features, device=linear.weight.device,
                          dtype=linear.weight.dtype)
        fused.weight.copy_(linear.weight * scale[None, :])
        fused.bias.copy_(linear.weight @ shift + linear.bias)
        return fused


class Residual(nn.Module):
    """``x + drop_path(m(x))``; the wrapped module is stored as ``m`` as in the release."""

    def __init__(self, module: nn.Module, drop_path: float = 0.0):
        super().__init__()
        self.m = module
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.m(x))


class RepVGGDW(nn.Module):
    """Depth-wise 3x3 + depth-wise 1x1 + identity; re-parameterised into one 3x3 conv by ``fuse``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = ConvBN(dim, dim, 3, 1, 1, groups=dim)
        self.conv1 = ConvBN(dim, dim, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        fused = self.conv.fuse()
        one_by_one = self.conv1.fuse()
        fused.weight[:, :, 1:2, 1:2] += one_by_one.weight + 1.0  # the identity is a centred 1
        fused.bias += one_by_one.bias
        return fused


class FFN(nn.Module):
    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.pw1 = ConvBN(dim, hidden_dim)
        self.act = nn.ReLU()
        self.pw2 = ConvBN(hidden_dim, dim, bn_weight_init=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class LKP(nn.Module):
    """Large-Kernel Perception: predicts one 3x3 kernel per pixel for each of ``dim // 8`` groups."""

    def __init__(self, dim: int, large_kernel: int = 7, small_kernel: int = 3, groups_divisor: int = 8):
        super().__init__()
        self.kernel_area = small_kernel * small_kernel  # an int also under TorchScript, where int ** int is float
        self.num_groups = dim // groups_divisor
        self.cv1 = ConvBN(dim, dim // 2)
        self.act = nn.ReLU()
        self.cv2 = ConvBN(dim // 2, dim // 2, large_kernel, 1, large_kernel // 2, groups=dim // 2)
        self.cv3 = ConvBN(dim // 2, dim // 2)
        self.cv4 = nn.Conv2d(dim // 2, self.kernel_area * self.num_groups, 1)
        self.norm = nn.GroupNorm(self.num_groups, self.kernel_area * self.num_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        return self.norm(self.cv4(x)).view(b, self.num_groups, self.kernel_area, h, w)


class LSConv(nn.Module):
    """LS convolution: ``bn(SKA(x, LKP(x))) + x``; the SKA output takes x's memory layout."""

    def __init__(self, dim: int):
        super().__init__()
        self.lkp = LKP(dim)
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(in_layout_of(ska(x, self.lkp(x)), x)) + x


def attention_offset_index(height: int, width: int) -> torch.Tensor:
    """(N, N) index of the offset (|dy|, |dx|) between every pair of points of a grid, as
    ``|dy| * width + |dx|``: the first-seen numbering of the release for a square grid."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    return (ys[:, None] - ys[None, :]).abs() * width + (xs[:, None] - xs[None, :]).abs()


# How the stage-4 attention bias, trained on an r x r token grid, reaches another grid.
#   'table':  the (heads, r, r) table over offsets (|dy|, |dx|) is resized bicubically to the grid's
#             offset range and indexed by offset: the bias depends only on the offset, on any grid.
#   'matrix': the released dense-prediction form: the (heads, r*r, r*r) bias matrix of the trained grid
#             is resized bicubically to (heads, N, N), N the token count, whatever the grid's shape.
ATTENTION_BIAS_RESIZES = ('table', 'matrix')


def bicubic_weights(size_in: int, size_out: int, like: torch.Tensor) -> torch.Tensor:
    """The (size_out, size_in) matrix ``M`` with ``M @ v`` = ``F.interpolate(mode='bicubic',
    align_corners=False)`` of a vector ``v`` of ``size_in`` values (PyTorch's kernel: source position
    (i + 0.5) * size_in / size_out - 0.5, four taps clamped to the ends, cubic convolution with
    A = -0.75, no antialiasing), computed in float64, returned in ``like``'s dtype and device. A bicubic
    resize of a matrix is then two matrix products, which onnxruntime runs far faster than its cubic
    Resize."""
    a = -0.75
    scale = size_in / size_out
    src = (torch.arange(size_out, device=like.device, dtype=torch.float64) + 0.5) * scale - 0.5
    floor = src.floor()
    t = (src - floor)[:, None]
    first = floor.long()[:, None] - 1
    distances = torch.cat([t + 1, t, 1 - t, 2 - t], dim=1)  # from each of the four taps
    near = ((a + 2) * distances - (a + 3)) * distances * distances + 1  # |d| <= 1
    far = ((a * distances - 5 * a) * distances + 8 * a) * distances - 4 * a  # 1 < |d| < 2
    coefficients = torch.cat([far[:, :1], near[:, 1:3], far[:, 3:]], dim=1)
    taps = (first + torch.arange(4, device=like.device)).clamp(0, size_in - 1)
    columns = torch.arange(size_in, device=like.device)
    return ((taps[:, :, None] == columns).double() * coefficients[:, :, None]).sum(dim=1).to(like.dtype)


@torch.fx.wrap
def grid_attention_bias(biases: torch.Tensor, trained_index: torch.Tensor, r: int, height: int,
                        width: int, resize: str = 'table') -> torch.Tensor:
    """The (heads, N, N) attention bias of a ``height`` x ``width`` token grid from a table of
    (heads, r * r) offsets trained on an r x r grid, resized the ``resize`` way (see
    ``ATTENTION_BIAS_RESIZES``). Both ways are exact copies on the r x r grid. Wrapped for FX: the
    branch depends on the input's size, so a traced graph keeps calling this function instead of
    freezing one branch."""
    heads = biases.shape[0]
    exporting = False
    if not torch.jit.is_scripting():  # TorchScript cannot compile the ONNX check
        exporting = torch.onnx.is_in_onnx_export()
    # Under export the resizing stays in the graph for every size: resizing to the same size is a copy.
    if (height, width) == (r, r) and not exporting:
        return biases[:, trained_index]
    if resize == 'matrix':  # F.interpolate(matrix[None], (N, N), mode='bicubic')[0] as two products
        weights = bicubic_weights(r * r, height * width, biases)
        if not exporting:
            return weights @ biases[:, trained_index] @ weights.t()
        # Exported as (1, N, r*r) @ ((heads, r*r, r*r) @ (1, r*r, N)), the same products with operands of
        # one rank, the right one first: OpenVINO's CPU plugin cannot compile a product of a matrix and a
        # stack of matrices of dynamic size, and turns a product whose right operand is a constant stack
        # into a fully connected layer of the wrong batch.
        weights = weights[None]
        return weights @ (biases[:, trained_index] @ weights.transpose(1, 2))
    table = F.interpolate(biases.view(1, heads, r, r), size=(height, width), mode='bicubic',
                          align_corners=False)
    index = attention_offset_index(height, width).to(table.device)
    return table.reshape(heads, height * width)[:, index]


class Attention(nn.Module):
    """Multi-head self-attention with a learned relative-position bias (LeViT style).

    The bias table holds one value per head and offset (|dy|, |dx|) of the ``resolution`` grid it was
    trained on; the trained grid reproduces the released model exactly. On another token grid it is
    resized as ``bias_resize`` says: ``'table'`` resizes the table over offsets to the grid's offset
    range (the bias stays a function of the offset), ``'matrix'`` resizes the whole bias matrix to the
    token count as the released detectors and segmenters do.
    """

    def __init__(self, dim: int, key_dim: int = 16, num_heads: int = 8, resolution: int = 14,
                 bias_resize: str = 'table'):
        super().__init__()
        if bias_resize not in ATTENTION_BIAS_RESIZES:
            raise ValueError(f'Attention: bias_resize={bias_resize!r}; valid: {ATTENTION_BIAS_RESIZES}')
        self.num_heads = num_heads
        self.scale = key_dim ** -0.5
        self.key_dim = key_dim
        self.resolution = resolution
        self.bias_resize = bias_resize
        attn_ratio = dim / (key_dim * num_heads)
        self.head_value_dim = int(attn_ratio * key_dim)
        self.query_key_dims = key_dim * num_heads
        self.value_dims = self.head_value_dim * num_heads
        self.qkv = ConvBN(dim, self.value_dims + 2 * self.query_key_dims)
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(self.value_dims, dim, bn_weight_init=0.0))
        self.dw = ConvBN(self.query_key_dims, self.query_key_dims, 3, 1, 1, groups=self.query_key_dims)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution * resolution))
        self.register_buffer('attention_bias_idxs', attention_offset_index(resolution, resolution))

    def attention_bias(self, height: int, width: int) -> torch.Tensor:
        return grid_attention_bias(self.attention_biases, self.attention_bias_idxs, self.resolution, height, width,
                                   self.bias_resize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).split([self.query_key_dims, self.query_key_dims, self.value_dims], dim=1)
        q = self.dw(q).view(b, self.num_heads, -1, n)
        k = k.reshape(b, self.num_heads, -1, n)
        v = v.reshape(b, self.num_heads, -1, n)
        attn = (q.transpose(-2, -1) @ k) * self.scale + self.attention_bias(h, w)
        attn = attn.softmax(dim=-1)
        out = (v @ attn.transpose(-2, -1)).reshape(b, -1, h, w)
        return self.proj(in_layout_of(out, x))


class Block(nn.Module):
    """LSNet block ``ffn(se(mixer(x)))``: even depth index RepVGGDW + SE, odd index LSConv
    (stages 1-3) or attention (stage 4)."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, depth_index: int, stage_index: int,
                 resolution: int, drop_path: float = 0.0, last_stage: int = 3, bias_resize: str = 'table'):
        super().__init__()
        if depth_index % 2 == 0:
            self.mixer = RepVGGDW(dim)
            self.se = SqueezeExcite(dim, 0.25)
        else:
            self.se = nn.Identity()
            if stage_index == last_stage:
                self.mixer = Residual(Attention(dim, key_dim, num_heads, resolution, bias_resize), drop_path)
            else:
                self.mixer = LSConv(dim)
        self.ffn = Residual(FFN(dim, 2 * dim), drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.se(self.mixer(x)))


class LSNet(StageModel):
    """LSNet, the classifier (the timm models ``lsnet_t`` ...): ``forward`` returns logits. The same
    network as an OpenMMLab backbone, returning stage maps, is :class:`LSNetBackbone`.

    Args:
        arch (str | dict): 't', 's', 'b', or a dict with ``embed_dims``, ``depths``, ``num_heads``
            (and optionally ``key_dim``). Default: 't'.
        in_chans (int): Input channels. Default: 3.
        num_classes (int): Classifier outputs; 0 builds no head. Default: 1000.
        distillation (bool): Add the ``head_dist`` distillation head. Default: False.
        drop_rate (float): Dropout on the pooled features before the head. Default: 0.
        drop_path_rate (float): Stochastic depth, linear over blocks. Default: 0.
        img_size (int): Training resolution, which sets the attention-bias grid (img_size / 64).
            Default: 224.
        attention_resolution (int | None): The attention-bias grid, overriding ``img_size``: the
            released detection/segmentation models use 14. Default: None.
        attention_bias_resize (str): How the stage-4 attention bias reaches a token grid other than
            the trained one: ``'table'`` resizes the table over offsets to the grid (the bias depends
            only on the offset), ``'matrix'`` resizes the trained grid's whole bias matrix to the
            token count, the released detection/segmentation computation (the dense configs use it,
            so released detector and segmenter checkpoints compute what the release computes).
            Both are exact on the trained grid. Default: 'table'.
        global_pool (str): 'avg', or '' to keep the last map (then ``num_classes`` must be 0).
            Default: 'avg'.
        frozen_stages (int): Stages to freeze, 0 = stem only, -1 = none. Default: -1.
        norm_eval (bool): Keep BatchNorm in eval mode while training. Default: False.
        norm_cfg (dict | None): The BatchNorm2d layers' kind: ``dict(type='BN'|'SyncBN'|'GN',
            requires_grad=True, ...)``. Default: None (BN).
        with_cp (bool): Activation checkpointing of every block (``set_grad_checkpointing``).
            Default: False.
        init_cfg (dict | list | None): ``dict(type='Pretrained', checkpoint=PATH, prefix='')`` or
            MMEngine initializers. Default: None.
        bn_momentum, bn_eps (float | None): timm's names for BatchNorm momentum and eps (merged into
            ``norm_cfg``). Default: None (PyTorch's).
        drop_block_rate (float | None): timm's DropBlock rate; LSNet has no DropBlock, so only None
            or 0 are accepted. Default: None.

    On CPU (float32 or bfloat16), the network runs in channels-last memory format, oneDNN's fast layout
    for convolutions; the maps it returns have the input's format. ``model.cpu_channels_last = False``
    keeps the input's format throughout.

    Example:
        >>> LSNet('t', num_classes=10).eval()(torch.rand(2, 3, 224, 224)).shape
        torch.Size([2, 10])
    """

    arch_settings = LSNET_ARCHS
    essential_keys = ('embed_dims', 'depths', 'num_heads')
    classifier_prefixes = ('head.', 'head_dist.')
    cpu_channels_last = True  # every block keeps the layout it receives (see StageModel)
    first_conv = 'patch_embed.0.c'
    stem_pattern = r'^patch_embed'
    stage_pattern = r'^blocks(\d+)'
    block_patterns = ((r'^blocks(\d+)\.(\d+)', None),)

    def __init__(self, arch: Union[str, Mapping[str, Any]] = 't', in_chans: int = 3, num_classes: int = 1000,
                 distillation: bool = False, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 img_size: int = 224, attention_resolution: Optional[int] = None,
                 attention_bias_resize: str = 'table', global_pool: str = 'avg',
                 out_indices: Optional[Sequence[int]] = None, frozen_stages: int = -1, norm_eval: bool = False,
                 norm_cfg: Optional[dict] = None, with_cp: bool = False, init_cfg: Optional[dict] = None,
                 bn_momentum: Optional[float] = None, bn_eps: Optional[float] = None,
                 drop_block_rate: Optional[float] = None, **unknown):
        super().__init__()
        reject_unknown_kwargs(type(self), unknown)
        self.arch_name, settings = resolve_arch(arch, self.arch_settings, self.essential_keys, 'LSNet')
        if attention_bias_resize not in ATTENTION_BIAS_RESIZES:
            raise ValueError(f'LSNet: attention_bias_resize={attention_bias_resize!r}; valid: '
                             f'{ATTENTION_BIAS_RESIZES}')
        embed_dims = tuple(settings['embed_dims'])
        depths = tuple(settings['depths'])
        num_heads = tuple(settings['num_heads'])
        key_dim = settings.get('key_dim', 16)
        if not len(embed_dims) == len(depths) == len(num_heads) == 4:
            raise ValueError(f'LSNet: embed_dims, depths and num_heads need 4 entries each, got '
                             f'{embed_dims}, {depths}, {num_heads}')
        if any(d % 8 for d in embed_dims[:3]):
            raise ValueError(f'LSNet: embed_dims {embed_dims} must be multiples of 8 (SKA kernel groups)')
        self.embed_dims = embed_dims
        self.num_stages = 4
        self.setup_stages(out_indices=out_indices, frozen_stages=frozen_stages, norm_eval=norm_eval,
                         init_cfg=init_cfg, with_cp=with_cp, num_classes=num_classes,
                         global_pool=global_pool, head_drop_rate=drop_rate)
        self.distillation = distillation
        self.distilled_training = False
        self.num_features = self.head_hidden_size = embed_dims[-1]

        e0 = embed_dims[0]
        self.patch_embed = nn.Sequential(
            ConvBN(in_chans, e0 // 4, 3, 2, 1), nn.ReLU(),
            ConvBN(e0 // 4, e0 // 2, 3, 2, 1), nn.ReLU(),
            ConvBN(e0 // 2, e0, 3, 2, 1))
        resolution = img_size // 8
        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.feature_info = []
        for stage in range(self.num_stages):
            layers: List[nn.Module] = []
            if stage > 0:
                prev = embed_dims[stage - 1]
                resolution = (resolution - 1) // 2 + 1
                layers += [ConvBN(prev, prev, 3, 2, 1, groups=prev), ConvBN(prev, embed_dims[stage], 1)]
            stage_resolution = attention_resolution if attention_resolution and stage == 3 else resolution
            for d in range(depths[stage]):
                layers.append(Block(embed_dims[stage], key_dim, num_heads[stage], d, stage, stage_resolution,
                                    drop_rates[sum(depths[:stage]) + d], bias_resize=attention_bias_resize))
            self.add_module(f'blocks{stage + 1}', nn.Sequential(*layers))
            self.feature_info.append(dict(num_chs=embed_dims[stage], reduction=8 * 2 ** stage,
                                          module=f'blocks{stage + 1}'))
        self.make_head(self.num_classes)
        self.finish_setup(merge_bn_args(norm_cfg, bn_momentum, bn_eps, drop_block_rate, 'LSNet'))

    # -- backbone hooks -------------------------------------------------------------------------------
    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(x)

    def forward_stage(self, index: int, x: torch.Tensor) -> torch.Tensor:
        for layer in getattr(self, f'blocks{index + 1}'):
            x = self.run_block(layer, x)
        return x

    def forward_stages_by_name(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks4(self.blocks3(self.blocks2(self.blocks1(self.patch_embed(x)))))

    def stage_modules(self, index: int) -> list[nn.Module]:
        return [self.patch_embed] if index < 0 else [getattr(self, f'blocks{index + 1}')]

    def remove_stage(self, index: int) -> None:
        delattr(self, f'blocks{index + 1}')

    def make_head(self, num_classes: int) -> None:
        self.head = BNLinear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.head_dist = (BNLinear(self.num_features, num_classes)
                          if self.distillation and num_classes > 0 else None)

    def classify(self, x: torch.Tensor):
        logits = self.head(x)
        if self.head_dist is None:
            return logits
        logits_dist = self.head_dist(x)
        if not torch.jit.is_scripting() and self.training and self.distilled_training:
            return logits, logits_dist
        return (logits + logits_dist) / 2

    @staticmethod
    def checkpoint_filter_fn(state_dict: dict, model: 'LSNet') -> dict:
        """Adapt a released/foreign LSNet state dict (unwrapped): resize attention-bias tables trained
        on another grid (e.g. the 14x14 tables of the released detectors) and use the model's own
        offset index."""
        own = model.state_dict()
        out = {}
        for key, value in state_dict.items():
            if key.endswith('attention_bias_idxs') and key in own:
                out[key] = own[key]
                continue
            if key.endswith('attention_biases') and key in own and value.shape != own[key].shape \
                    and value.dim() == 2 and value.shape[0] == own[key].shape[0]:
                src = int(round(value.shape[1] ** 0.5))
                dst = int(round(own[key].shape[1] ** 0.5))
                if src * src == value.shape[1] and dst * dst == own[key].shape[1]:
                    value = F.interpolate(value.reshape(1, -1, src, src).float(), size=(dst, dst),
                                          mode='bicubic', align_corners=False).reshape(value.shape[0], -1)
            out[key] = value
        return out

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {name for name, _ in self.named_parameters() if name.endswith('attention_biases')}

    @torch.jit.ignore
    def set_distilled_training(self, enable: bool = True) -> None:
        """In training, return (class, distillation) logits separately (DeiT-style training)."""
        self.distilled_training = enable


# -- timm registration ---------------------------------------------------------------------------------

class LSNetBackbone(StageMapsBackbone, LSNet):
    """LSNet as an OpenMMLab backbone (``type='LSNet'`` in mmdet/mmseg configs): :class:`LSNet`'s layers and
    checkpoint layout without a head; ``forward`` returns the maps of the stages in ``out_indices``
    (strides 8, 16, 32, 64) as a tuple. Every other argument is :class:`LSNet`'s; those of the head
    (``num_classes``, ``distillation``, ``drop_rate``) are refused.

    Example:
        >>> model = LSNetBackbone('t', out_indices=(0, 1, 2, 3)).eval()
        >>> [tuple(f.shape) for f in model(torch.rand(1, 3, 200, 312))]
        [(1, 64, 25, 39), (1, 128, 13, 20), (1, 256, 7, 10), (1, 384, 4, 5)]
    """
    head_arguments = {'num_classes': 0, 'distillation': False, 'drop_rate': 0.0}

    def __init__(self, arch: Union[str, Mapping[str, Any]] = 't', out_indices: Sequence[int] = (0, 1, 2, 3),
                 **kwargs):
        super().__init__(arch, out_indices=out_indices, **self.classifier_kwargs(kwargs))

def _cfg(name: str, distillation: bool) -> dict:
    # The released weights live in the Hugging Face repository jameslahm/lsnet as lsnet_<arch>.pth.
    # custom_load='hf': timm downloads the file and hands it to LSNet.load_pretrained, which reads
    # it without unpickling code, adapts in_chans and skips a head of another size.
    return dict(hf_hub_id='jameslahm/lsnet', hf_hub_filename=f'{name}.pth', custom_load='hf',
                num_classes=1000, input_size=(3, 224, 224), pool_size=(4, 4), crop_pct=0.875,
                interpolation='bicubic', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                first_conv=LSNet.first_conv, classifier=('head.l', 'head_dist.l') if distillation else 'head.l',
                license='mit', paper_ids='arXiv:2503.23135')


def _create_lsnet(variant: str, pretrained: bool = False, **kwargs) -> LSNet:
    out_indices = kwargs.pop('out_indices', (0, 1, 2, 3))
    return build_model_with_cfg(
        LSNet, variant, pretrained,
        pretrained_filter_fn=LSNet.pretrained_filter,
        feature_cfg=dict(feature_cls='getter', out_indices=out_indices),
        **kwargs)


def _register(name: str, arch: str, distillation: bool) -> None:
    def factory(pretrained: bool = False, **kwargs) -> LSNet:
        return _create_lsnet(name, pretrained, arch=arch, distillation=distillation, **kwargs)
    factory.__name__ = name
    factory.__doc__ = f'LSNet-{arch.upper()}{" with distillation head" if distillation else ""}.'
    factory.__module__ = __name__
    globals()[name] = register_model(factory)


_VARIANTS = {f'lsnet_{arch}{"_distill" if distill else ""}': (arch, distill)
             for arch in LSNet.arch_settings for distill in (False, True)}
# timm's register_model reads this module's ``default_cfgs`` for each registered name.
default_cfgs = generate_default_cfgs({name: _cfg(name, distill) for name, (_, distill) in _VARIANTS.items()})
for _name, (_arch, _distill) in _VARIANTS.items():
    _register(_name, _arch, _distill)
