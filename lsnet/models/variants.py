"""The variants of both architectures as data: stage layouts and the figures the papers publish.

Model classes, configs, tools and tests read these tables instead of re-typing them.
"""

# LSNet (arXiv:2503.23135, Table 1): channels, blocks and attention heads per stage.
LSNET_ARCHS = {
    't': dict(embed_dims=(64, 128, 256, 384), depths=(0, 2, 8, 10), num_heads=(3, 3, 3, 4), key_dim=16),
    's': dict(embed_dims=(96, 192, 320, 448), depths=(1, 2, 8, 10), num_heads=(3, 3, 3, 4), key_dim=16),
    'b': dict(embed_dims=(128, 256, 384, 512), depths=(4, 6, 8, 10), num_heads=(3, 3, 3, 4), key_dim=16),
}

# VAN (arXiv:2202.09741, Table 1): channels, blocks and MLP ratios per stage.
VAN_ARCHS = {
    'b0': dict(embed_dims=(32, 64, 160, 256), depths=(3, 3, 5, 2), mlp_ratios=(8, 8, 4, 4)),
    'b1': dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 4, 2), mlp_ratios=(8, 8, 4, 4)),
    'b2': dict(embed_dims=(64, 128, 320, 512), depths=(3, 3, 12, 3), mlp_ratios=(8, 8, 4, 4)),
    'b3': dict(embed_dims=(64, 128, 320, 512), depths=(3, 5, 27, 3), mlp_ratios=(8, 8, 4, 4)),
    'b4': dict(embed_dims=(64, 128, 320, 512), depths=(3, 6, 40, 3), mlp_ratios=(8, 8, 4, 4)),
    'b5': dict(embed_dims=(96, 192, 480, 768), depths=(3, 3, 24, 3), mlp_ratios=(8, 8, 4, 4)),
    'b6': dict(embed_dims=(96, 192, 384, 768), depths=(6, 6, 90, 6), mlp_ratios=(8, 8, 4, 4)),
}

# mmpretrain's names for the same VAN variants, the words its configs use. Its single letters ('t' for
# b0, ...) are not taken: here 't', 's', 'b' name the LSNet variants.
VAN_MMPRETRAIN_ARCHS = {'tiny': 'b0', 'small': 'b1', 'base': 'b2', 'large': 'b3'}

# The papers' ImageNet-1K figures for the deploy models at 224x224: params (M), GFLOPs (MAC = 1).
PAPER_FIGURES = {
    'lsnet_t': (11.4, 0.3), 'lsnet_s': (16.1, 0.5), 'lsnet_b': (23.2, 1.3),
    'van_b0': (4.1, 0.9), 'van_b1': (13.9, 2.5), 'van_b2': (26.6, 5.0), 'van_b3': (44.8, 9.0),
}


def stage_channels(backbone: str) -> tuple:
    """Channels of the four stage maps of a timm model name (``lsnet_t``, ``van_b0``, ...)."""
    family, _, arch = backbone.partition('_')
    table = {'lsnet': LSNET_ARCHS, 'van': VAN_ARCHS}.get(family)
    arch = arch.split('_')[0]
    if table is None or arch not in table:
        raise ValueError(f'unknown backbone {backbone!r}; valid: '
                         f'{[f"lsnet_{a}" for a in LSNET_ARCHS] + [f"van_{a}" for a in VAN_ARCHS]}')
    return tuple(table[arch]['embed_dims'])
