_base_ = './classifier.py'
model = dict(backbone=dict(model_name='lsnet_t', num_classes=1000, drop_path_rate=0.0))
