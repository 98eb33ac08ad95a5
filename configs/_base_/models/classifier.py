# The classifier MMEngine trains (timm's Mixup/CutMix and label smoothing around a backbone); the backbone
# comes from lsnet_classifier.py / van_classifier.py.
model = dict(
    type='TimmClassifier',
    mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1),
    label_smoothing=0.1)
