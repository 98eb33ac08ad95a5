_base_ = './classifier.py'
model = dict(backbone=dict(model_name='van_b0', num_classes=1000, drop_path_rate=0.1))
