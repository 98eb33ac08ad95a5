_base_ = './classifier.py'
model = dict(backbone=dict(type='LSNet', arch='t', num_classes=1000, drop_path_rate=0.0))
