"""LSNetFPN: an FPN whose outputs can start finer than the backbone's first stage.

LSNet's first stage has stride 8; Mask R-CNN wants a stride-4 level. ``num_extra_trans_convs``
adds that many finer levels, each a 2x2 stride-2 transposed convolution of the finest lateral (after
the top-down pass), or of the previous such level, followed by its own 3x3 output conv; they come
first in the output tuple. Key names follow the released detection checkpoints.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from ..models.variants import stage_channels


class LSNetFPN(BaseModule):
    """Feature pyramid with optional extra finer (transposed-conv) and coarser levels.

    Args:
        in_channels (Sequence[int] | str): Channels of each input level, or the timm name of the
            backbone variant whose four stage maps come in (``'lsnet_s'``, ``'van_b1'``), looked up in
            ``lsnet.models.variants``.
        out_channels (int): Channels of every output level.
        num_outs (int): Number of outputs, the extra finer levels included.
        start_level (int): First input level used. Default: 0.
        end_level (int): Last input level used (inclusive), -1 = the last. Default: -1.
        add_extra_convs (bool | str): Extra coarser levels by stride-2 3x3 convs: False (max-pool
            instead), 'on_input', 'on_lateral' or 'on_output' (True means 'on_input'). Default: False.
        relu_before_extra_convs (bool): ReLU before each extra conv after the first. Default: False.
        num_extra_trans_convs (int): Extra finer levels by transposed convs. Default: 0.
        conv_cfg, norm_cfg, act_cfg: For every ConvModule. Default: None.
        upsample_cfg (dict): ``F.interpolate`` arguments of the top-down pass. Default: nearest.
        init_cfg (dict): Default: Xavier-uniform on convolutions.

    Example:
        >>> neck = LSNetFPN([64, 128, 256, 384], 256, num_outs=5, num_extra_trans_convs=1)
        >>> feats = [torch.rand(1, c, 64 // 2 ** i, 80 // 2 ** i) for i, c in enumerate([64, 128, 256, 384])]
        >>> [tuple(o.shape[-2:]) for o in neck(feats)]
        [(128, 160), (64, 80), (32, 40), (16, 20), (8, 10)]
    """

    def __init__(self, in_channels: Union[Sequence[int], str], out_channels: int, num_outs: int, start_level: int = 0,
                 end_level: int = -1, add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False, num_extra_trans_convs: int = 0,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None, upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Union[dict, list] = dict(type='Xavier', layer=['Conv2d', 'ConvTranspose2d'],
                                                    distribution='uniform')):
        super().__init__(init_cfg)
        self.in_channels = list(stage_channels(in_channels) if isinstance(in_channels, str) else in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg)
        self.num_extra_trans_convs = num_extra_trans_convs
        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
        elif 0 <= end_level < self.num_ins:
            self.backbone_end_level = end_level + 1
        else:
            raise ValueError(f'LSNetFPN: end_level={end_level} is out of range; valid: -1 or 0..{self.num_ins - 1}')
        if not 0 <= start_level < self.backbone_end_level:
            raise ValueError(f'LSNetFPN: start_level={start_level} must lie in 0..{self.backbone_end_level - 1}')
        self.start_level = start_level
        used_levels = self.backbone_end_level - start_level
        if num_outs < used_levels + num_extra_trans_convs:
            raise ValueError(f'LSNetFPN: num_outs={num_outs} is less than the {used_levels} input levels '
                             f'plus {num_extra_trans_convs} transposed-conv levels')
        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs not in (False, 'on_input', 'on_lateral', 'on_output'):
            raise ValueError(f"LSNetFPN: add_extra_convs={add_extra_convs!r}; valid: False, True, 'on_input', "
                             "'on_lateral', 'on_output'")
        self.add_extra_convs = add_extra_convs

        def conv(in_chs: int, kernel: int, act: Optional[dict] = act_cfg) -> ConvModule:
            return ConvModule(in_chs, out_channels, kernel, padding=kernel // 2, conv_cfg=conv_cfg,
                              norm_cfg=norm_cfg, act_cfg=act, inplace=False)

        self.lateral_convs = nn.ModuleList(conv(self.in_channels[i], 1)
                                           for i in range(start_level, self.backbone_end_level))
        self.fpn_convs = nn.ModuleList(conv(out_channels, 3) for _ in range(used_levels))
        num_extra = num_outs - used_levels - num_extra_trans_convs
        if add_extra_convs:
            for index in range(num_extra):
                in_chs = (self.in_channels[self.backbone_end_level - 1]
                          if index == 0 and add_extra_convs == 'on_input' else out_channels)
                self.fpn_convs.append(ConvModule(in_chs, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                                                 norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))
        self.extra_trans_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 2, stride=2, conv_cfg=dict(type='deconv'), norm_cfg=norm_cfg,
                       act_cfg=act_cfg, inplace=False)
            for _ in range(num_extra_trans_convs))
        self.extra_fpn_convs = nn.ModuleList(conv(out_channels, 3) for _ in range(num_extra_trans_convs))

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple:
        if len(inputs) != self.num_ins:
            raise ValueError(f'LSNetFPN expects {self.num_ins} input levels, got {len(inputs)}')
        laterals = [lateral(inputs[i + self.start_level]) for i, lateral in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              **self.upsample_cfg)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals))]
        finer = []
        source = laterals[0]
        for trans, out_conv in zip(self.extra_trans_convs, self.extra_fpn_convs):
            source = trans(source)
            finer.append(out_conv(source))
        num_extra = self.num_outs - len(outs) - len(finer)
        if num_extra > 0:
            if not self.add_extra_convs:
                for _ in range(num_extra):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {'on_input': inputs[self.backbone_end_level - 1], 'on_lateral': laterals[-1],
                          'on_output': outs[-1]}[self.add_extra_convs]
                outs.append(self.fpn_convs[len(laterals)](source))
                for i in range(len(laterals) + 1, len(laterals) + num_extra):
                    previous = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](previous))
        return tuple(finer[::-1] + outs)  # finest first
