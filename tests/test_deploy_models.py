"""Whole trained models leave PyTorch: ``tools/deploy.py`` exports (and quantizes) a trained RetinaNet,
Mask R-CNN and Semantic FPN for onnxruntime (.onnx) or OpenVINO (.xml), ``tools/test.py`` evaluates the
files with the configs' own CocoMetric and IoUMetric, and the metrics agree with the PyTorch model's on
the same validation set (the shared runs' own ``tools/test.py`` evaluation, see tests/conftest.py)."""
import json
import re

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # every test here runs the project's tools
pytest.importorskip('mmdet')
pytest.importorskip('mmseg')
pytest.importorskip('onnxruntime')

from mm_helpers import run_tool  # noqa: E402


@pytest.fixture(scope='module')
def retinanet(shared_runs, tmp_path_factory):
    """The session's shared RetinaNet-LSNet-T run (trained and evaluated once), and a folder of this
    module's own for what the tests write."""
    return shared_runs.run('retinanet/retinanet_lsnet-t_fpn_shapes.py', 'det'), tmp_path_factory.mktemp('retinanet')


@pytest.fixture(scope='module')
def sem_fpn(shared_runs, tmp_path_factory):
    return shared_runs.run('sem_fpn/fpn_lsnet-t_shapes.py', 'seg'), tmp_path_factory.mktemp('sem_fpn')


@pytest.fixture(scope='module')
def mask_rcnn(shared_runs, tmp_path_factory):
    return shared_runs.run('mask_rcnn/mask-rcnn_lsnet-t_fpn_shapes.py', 'ins'), tmp_path_factory.mktemp('mask_rcnn')


def evaluate(cfg, model_file, tmp) -> dict:
    out = tmp / f'{model_file.name}.json'
    result = run_tool(['tools/test.py', str(cfg), str(model_file), '--work-dir', str(tmp / 'test'), '--out', str(out)])
    runtime = {'.onnx': 'onnxruntime', '.xml': 'openvino'}[model_file.suffix]
    assert f'running {model_file} in {runtime}' in result.stdout
    return json.loads(out.read_text())


def test_retinanet_exports_and_evaluates_like_pytorch(retinanet):
    """fp32 ONNX bbox mAP within 0.005 of PyTorch's; the INT8 file comes from the same command, whose
    accuracy gate evaluates it beside the fp32 one with the config's CocoMetric: here told to demand an
    improvement (--int8-max-drop -1), it refuses to ship it (exit 3, kept as .int8.rejected.onnx, both
    values named); the graph holds QDQ int8 convolutions and evaluates through the same metric."""
    import onnx
    run, tmp = retinanet
    cfg, checkpoint, torch_metrics = run.cfg, run.checkpoint, run.metrics
    onnx_file = tmp / 'retinanet.onnx'
    result = run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(onnx_file), '--size', '64', '64', '--int8',
                       '--calib-images', '4', '--int8-max-drop', '-1'], check=False)
    assert result.returncode == 3, result.stderr[-3000:]
    assert 'onnxruntime vs PyTorch at 96x128' in result.stdout
    assert re.search(r'INT8 coco/bbox_mAP \S+ vs fp32 \S+ on the test set of the config: \S+ (below|above), bound -1',
                     result.stdout), result.stdout[-2000:]
    rejected = tmp / 'retinanet.int8.rejected.onnx'
    assert 'beyond the bound' in result.stderr and rejected.is_file() and not (tmp / 'retinanet.int8.onnx').exists()
    onnx_metrics = evaluate(cfg, onnx_file, tmp)
    assert onnx_metrics['coco/bbox_mAP'] == pytest.approx(torch_metrics['coco/bbox_mAP'], abs=0.005)
    graph = onnx.load(str(rejected)).graph
    ops = {node.op_type for node in graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear', 'Conv'} <= ops
    int8_metrics = evaluate(cfg, rejected, tmp)
    assert 0.0 <= int8_metrics['coco/bbox_mAP'] <= 1.0
    # nothing the user has is overwritten without asking
    again = run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(onnx_file)], check=False)
    assert again.returncode == 1 and 'exists; pass --overwrite' in again.stderr


def test_mask_rcnn_exports_and_evaluates_like_pytorch(mask_rcnn):
    """One file holds the first stage (images -> FPN maps and RPN outputs) and the box and mask heads (RoI
    features in, any number of RoIs, also with a fixed image shape); evaluated through mmdet's RPN,
    RoIAlign and post-processing, fp32 bbox and mask mAP within 0.005 of PyTorch's. ``--int8`` calibrates
    all three parts (the heads on the RoI features of the fp32 run) and the gate judges both metrics."""
    import onnx
    import onnxruntime as ort
    run, tmp = mask_rcnn
    cfg, checkpoint, torch_metrics = run.cfg, run.checkpoint, run.metrics
    onnx_file = tmp / 'mask_rcnn.onnx'
    result = run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(onnx_file), '--size', '64', '64', '--int8',
                       '--calib-images', '2', '--int8-max-drop', '1'])
    assert 'two-stage detector: onnxruntime vs PyTorch at 96x128: max difference' in result.stdout
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert re.search(rf'INT8 {key} \S+ vs fp32 \S+ on the test set of the config: \S+ (below|above), bound 1', result.stdout)
    graph = onnx.load(str(onnx_file)).graph
    assert [i.name for i in graph.input] == ['images', 'bbox_roi_feats', 'mask_roi_feats']
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    feeds = {'images': np.zeros((1, 3, 64, 96), np.float32), 'bbox_roi_feats': np.zeros((3, 256, 7, 7), np.float32),
             'mask_roi_feats': np.zeros((5, 256, 14, 14), np.float32)}
    named = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    assert named['cls_score'].shape[0] == 3 and named['mask_pred'].shape[:1] == (5,)
    assert named['feat_0'].shape[2:] == (16, 24)  # the stride-4 level
    int8_ops = {node.op_type for node in onnx.load(str(tmp / 'mask_rcnn.int8.onnx')).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= int8_ops
    onnx_metrics = evaluate(cfg, onnx_file, tmp)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert onnx_metrics[key] == pytest.approx(torch_metrics[key], abs=0.005), key
    # the same predictions as PyTorch's on the validation images (after 8 iterations both mAPs are ~0,
    # so the evaluators alone would not tell a broken RoI path)
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    from lsnet.checkpoint import load_model_checkpoint
    from lsnet.mm.build import build_model_from_config
    from lsnet.mm.onnx_model import task_export_for
    model, config = build_model_from_config(Config.fromfile(str(cfg)), pretrained=False)
    load_model_checkpoint(model, str(checkpoint))
    model.eval()
    runtime = task_export_for(model).runtime(model, onnx_file)
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = next(iter(Runner.build_dataloader(config.test_dataloader)))
    with torch.no_grad():
        want = [sample.pred_instances for sample in model.test_step(data)]
    got = [sample.pred_instances for sample in runtime.test_step(data)]
    for w, g in zip(want, got):
        assert len(w) == len(g) > 0
        torch.testing.assert_close(g.bboxes, w.bboxes, atol=1e-2, rtol=1e-3)
        torch.testing.assert_close(g.scores, w.scores, atol=1e-4, rtol=1e-3)
        assert torch.equal(g.labels, w.labels)
        assert (g.masks != w.masks).float().mean() < 1e-3
    fixed = tmp / 'mask_rcnn_fixed.onnx'
    run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(fixed), '--size', '64', '64', '--fixed-shape'])
    dims = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in onnx.load(str(fixed)).graph.input}
    assert dims == {'images': [1, 3, 64, 64], 'bbox_roi_feats': ['rois', 256, 7, 7],
                    'mask_roi_feats': ['mask_rois', 256, 14, 14]}
    # its parts are onnxruntime sessions cut from the ONNX file: an OpenVINO file is refused by name
    result = run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(tmp / 'mask_rcnn.xml')], check=False)
    assert result.returncode != 0 and 'two-stage detector exports to ONNX for onnxruntime only' in result.stderr
    assert not (tmp / 'mask_rcnn.xml').exists()


def test_sem_fpn_exports_labels_and_evaluates_like_pytorch(sem_fpn):
    """The segmenter's graph ends in resize-to-input and argmax (int64 labels at the input's size,
    dynamic); fp32 ONNX mIoU within 0.2 points of PyTorch's."""
    import onnxruntime as ort
    run, tmp = sem_fpn
    cfg, checkpoint, torch_metrics = run.cfg, run.checkpoint, run.metrics
    onnx_file = tmp / 'sem_fpn.onnx'
    run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(onnx_file), '--size', '64', '64'])
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    labels = session.run(None, {'images': np.zeros((2, 3, 96, 160), np.float32)})[0]
    assert labels.shape == (2, 96, 160) and labels.dtype == np.int64
    onnx_metrics = evaluate(cfg, onnx_file, tmp)
    assert onnx_metrics['mIoU'] == pytest.approx(torch_metrics['mIoU'], abs=0.2)


def test_fixed_shape_export_refuses_other_shapes_by_name(retinanet):
    """``--fixed-shape``: batch 1 at ``--size`` only, with no shape arithmetic left to run; the runner
    names the exported shape when fed another."""
    import onnx
    from lsnet.mm.build import build_model_from_config
    from lsnet.mm.onnx_model import task_export_for
    run, tmp = retinanet
    cfg, checkpoint = run.cfg, run.checkpoint
    onnx_file = tmp / 'fixed.onnx'
    run_tool(['tools/deploy.py', str(cfg), str(checkpoint), str(onnx_file), '--size', '64', '64', '--fixed-shape'])
    graph = onnx.load(str(onnx_file)).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]
    model, _ = build_model_from_config(cfg, pretrained=False)
    runtime = task_export_for(model).runtime(model, onnx_file)
    with pytest.raises(ValueError, match=r'exported for inputs \(1, 3, 64, 64\)'):
        runtime.run(torch.zeros(2, 3, 64, 64))


@pytest.mark.parametrize('task', ['retinanet', 'sem_fpn'])
def test_openvino_export_and_nncf_int8_evaluate_like_pytorch(task, request):
    """OUT.xml: the same network as OpenVINO's IR (fp32 weights, SKA in its padded form, no flat-window
    SKA), evaluated in OpenVINO by ``tools/test.py`` with the config's metric within 0.005 bbox mAP / 0.2
    mIoU points of PyTorch's; ``--int8`` quantizes it with NNCF (int8 FakeQuantize nodes in the IR) and
    the gate evaluates it beside the fp32 file."""
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    import openvino as ov
    run, tmp = request.getfixturevalue(task)
    key, bound = {'retinanet': ('coco/bbox_mAP', 0.005), 'sem_fpn': ('mIoU', 0.2)}[task]
    xml = tmp / f'{task}.xml'
    result = run_tool(['tools/deploy.py', str(run.cfg), str(run.checkpoint), str(xml), '--size', '64', '64',
                       '--int8', '--calib-images', '8', '--int8-max-drop', '100'])
    assert 'openvino vs PyTorch at 96x128' in result.stdout
    assert re.search(rf'INT8 {key} \S+ vs fp32 \S+ on the test set of the config', result.stdout), result.stdout[-2000:]
    int8 = tmp / f'{task}.int8.xml'
    for model_file in (xml, int8):
        assert model_file.with_suffix('.bin').is_file()
    ops = {op.get_type_name(): op for op in ov.Core().read_model(str(xml)).get_ops()}
    assert 'Convolution' in ops and 'FakeQuantize' not in ops
    assert {o.get_element_type() for o in ov.Core().read_model(str(xml)).get_ops() if o.get_type_name() == 'Constant'
            and o.get_output_partial_shape(0).rank.get_length() == 4} == {ov.Type.f32}  # weights not in fp16
    assert 'FakeQuantize' in {op.get_type_name() for op in ov.Core().read_model(str(int8)).get_ops()}
    metrics = evaluate(run.cfg, xml, tmp)
    assert metrics[key] == pytest.approx(run.metrics[key], abs=bound)
    int8_metrics = evaluate(run.cfg, int8, tmp)
    assert 0.0 <= int8_metrics[key] <= (1.0 if key.startswith('coco') else 100.0)
