_base_ = './van-b0_8xb128_in1k.py'
model = dict(backbone=dict(model_name='van_b1', drop_path_rate=0.1))
