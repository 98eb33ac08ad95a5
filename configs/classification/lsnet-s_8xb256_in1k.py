_base_ = './lsnet-t_8xb256_in1k.py'
model = dict(backbone=dict(model_name='lsnet_s'))
optim_wrapper = dict(optimizer=dict(weight_decay=0.025))
