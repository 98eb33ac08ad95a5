# DeiT-style hard distillation through the second head; teacher RegNetY-16GF (timm 'regnety_160').
_base_ = './lsnet-b_8xb256_in1k.py'
model = dict(backbone=dict(model_name='lsnet_b_distill'),
             teacher=dict(model='regnety_160', checkpoint='checkpoints/regnety_160.pth', alpha=0.5))
