# VAN: mean = std = 0.5 input normalisation, weight decay 0.05.
_base_ = './lsnet-t_8xb256_in1k.py'
model = dict(backbone=dict(_delete_=True, type='VAN', arch='b1', num_classes=1000, drop_path_rate=0.1))
train_dataloader = dict(batch_size=128, dataset=dict(transform=dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))))
val_dataloader = dict(batch_size=128, dataset=dict(transform=dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))))
test_dataloader = val_dataloader
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
