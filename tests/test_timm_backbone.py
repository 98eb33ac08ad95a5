"""AnySizeTIMMBackbone: a timm model's stage maps as an OpenMMLab backbone, at any input size (the
efficientvit_m4 baseline of the dense comparisons)."""
import pytest
import torch

pytest.importorskip('mmengine')
pytest.importorskip('mmcv')
import timm  # noqa: E402

from lsnet.checkpoint import CheckpointError  # noqa: E402
from lsnet.mm.timm_backbone import AnySizeTIMMBackbone  # noqa: E402


def timm_stage_maps(model, x):
    return model.forward_intermediates(x, intermediates_only=True)


def test_equals_timm_at_its_resolution_and_runs_at_any_size():
    torch.manual_seed(0)
    backbone = AnySizeTIMMBackbone('efficientvit_m4').eval()
    reference = timm.create_model('efficientvit_m4', num_classes=0).eval()
    reference.load_state_dict(backbone.timm_model.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        for got, want in zip(backbone(x), timm_stage_maps(reference, x)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        maps = backbone(torch.randn(1, 3, 200, 336))  # 1333x800's aspect: a grid timm's model refuses
        with pytest.raises(AssertionError, match='wrong size'):
            reference(torch.randn(1, 3, 200, 336))
    assert [tuple(m.shape[1:]) for m in maps] == [(128, 13, 21), (256, 7, 11), (384, 4, 6)]
    assert backbone.out_channels == [128, 256, 384] and backbone.strides == [16, 32, 64]
    assert [m.shape[1] for m in AnySizeTIMMBackbone('efficientvit_m4', out_indices=(-1,))(x)] == [384]


def test_window_attention_at_another_grid_is_timms_at_that_grid():
    """At 320x320 timm builds its model for that grid: its first two stages cut the same 7x7 windows
    with the same biases, so their maps must equal ours (the last stage's window differs: 5 against
    the 4 of the 224 weights, which ours keeps)."""
    torch.manual_seed(0)
    backbone = AnySizeTIMMBackbone('efficientvit_m4').eval()
    reference = timm.create_model('efficientvit_m4', num_classes=0, img_size=320).eval()
    target = reference.state_dict()
    reference.load_state_dict({k: v for k, v in backbone.timm_model.state_dict().items()
                               if target[k].shape == v.shape}, strict=False)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        for got, want in list(zip(backbone(x), timm_stage_maps(reference, x)))[:2]:
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_pretrained_init_cfg_reads_a_timm_classifier_file_safely(tmp_path):
    """A timm checkpoint (classifier head included) loads through init_cfg; its head is skipped, any
    other mismatch is named; a crafted pickle is refused."""
    classifier = timm.create_model('efficientvit_m4')
    path = tmp_path / 'efficientvit_m4.pth'
    torch.save(classifier.state_dict(), path)
    backbone = AnySizeTIMMBackbone('efficientvit_m4', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    for key, value in backbone.timm_model.state_dict().items():
        assert torch.equal(value, classifier.state_dict()[key]), key
    broken = tmp_path / 'broken.pth'
    torch.save({k: v for k, v in classifier.state_dict().items() if not k.startswith('stages.2.')}, broken)
    with pytest.raises(CheckpointError, match='stages.2'):
        AnySizeTIMMBackbone('efficientvit_m4', init_cfg=dict(type='Pretrained', checkpoint=str(broken))).init_weights()

    class Payload:
        def __reduce__(self):
            return (print, ('executed',))
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': Payload()}, evil)
    with pytest.raises(CheckpointError, match='not safe to unpickle'):
        AnySizeTIMMBackbone('efficientvit_m4', init_cfg=dict(type='Pretrained', checkpoint=str(evil))).init_weights()


def test_features_only_false_is_refused_by_name():
    with pytest.raises(ValueError, match='features_only=False'):
        AnySizeTIMMBackbone('efficientvit_m4', features_only=False)
