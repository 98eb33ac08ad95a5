_base_ = './lsnet-t_shapes.py'
model = dict(backbone=dict(_delete_=True, type='VAN', arch='b0', num_classes=4, drop_path_rate=0.1))
