"""Export a trained classifier, detector (RetinaNet, Faster/Mask R-CNN) or Semantic FPN (config + checkpoint)
to ONNX for onnxruntime, or to OpenVINO's IR, optionally INT8.

python tools/deploy.py CONFIG CHECKPOINT OUT.onnx|OUT.xml [--size H W] [--fixed-shape] [--int8 [--calib-images N]]

OUT's suffix names the runtime: ``.onnx`` for onnxruntime, ``.xml`` (with its ``.bin``) for OpenVINO (the same
ONNX graph with SKA in the form OpenVINO runs fastest, converted by OpenVINO; not for two-stage detectors).

The graph holds the whole network with the backbone fused: classifiers give ``logits``; detectors
the per-level class and box maps (decoded and NMS'd by mmdet's own code in
``lsnet.detection.export.OnnxDetector``), two-stage detectors their first stage and RoI heads as parts of
one file (``OnnxTwoStageDetector`` runs mmdet's RPN, RoIAlign and post-processing between them); segmentors a ``labels`` map at the input's size (resize and argmax
in the graph). Batch and image size are dynamic unless ``--fixed-shape`` (batch 1, ``--size``).
``--int8`` also writes OUT with ``.int8.onnx`` (``.int8.xml``): static quantization by the runtime's own
quantizer (onnxruntime: QDQ, per-channel int8 weights, uint8 activations of the convolutions and matrix
products; OpenVINO: NNCF's post-training quantization), calibrated on the training set's first N images
(shuffled with seed 0) through the test pipeline. The INT8 model is then
evaluated beside the fp32 one on the config's test set with its own metrics (top-1, bbox and mask
mAP, mIoU): if one falls further below than the task's bound (``--int8-max-drop``; default 0.5 points of
top-1 or mIoU, 0.01 bbox or mask mAP), it is not written as OUT.int8.onnx but kept as OUT.int8.rejected.onnx, and
the command exits with status 3 naming both values. ``--no-int8-check`` skips the evaluation.
Evaluate any of the files with ``python tools/test.py CONFIG FILE``.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from lsnet.cli import import_installed_tasks, run_cli  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='the file to write: .onnx (onnxruntime) or .xml (OpenVINO); refused if it '
                        'exists, unless --overwrite')
    parser.add_argument('--size', nargs=2, type=int, default=None, metavar=('H', 'W'),
                        help='the traced input size; with --fixed-shape the only one. Default: 256 320')
    parser.add_argument('--fixed-shape', action='store_true', help='batch 1 and --size only (no shape arithmetic)')
    parser.add_argument('--int8', action='store_true', help='also write the INT8 model OUT.int8.onnx (.int8.xml)')
    parser.add_argument('--calib-images', type=int, default=64, help='training images that calibrate INT8')
    parser.add_argument('--int8-max-drop', type=float, default=None,
                        help="how far the INT8 model's metric may fall below the fp32 model's (default: the task's bound)")
    parser.add_argument('--no-int8-check', action='store_true', help='write the INT8 model without evaluating it')
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. model.test_cfg.score_thr=0.05')
    return parser.parse_args(argv)


def calibration_dataloader(cfg):
    """The training images through the test pipeline, one per batch, shuffled with a fixed seed."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.test_dataloader)
    train = cfg.train_dataloader.dataset
    for key in ('data_root', 'split', 'ann_file', 'data_prefix'):
        if key in train:
            loader.dataset[key] = copy.deepcopy(train[key])
    loader.update(batch_size=1, num_workers=0, persistent_workers=False,
                  sampler=dict(type='DefaultSampler', shuffle=True, seed=0))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return Runner.build_dataloader(loader, seed=0)


INT8_REJECTED_EXIT_STATUS = 3


def int8_verdict(task, cfg, fp32: str, int8: str, scratch: str, max_drop) -> tuple[bool, list]:
    """Evaluate both files with the config's metrics: (every judged metric within the bound, one report
    line per metric)."""
    from lsnet.mm.onnx_model import evaluate_exported
    bound = task.int8_max_drop if max_drop is None else max_drop
    fp32_metrics, int8_metrics = (evaluate_exported(cfg, path, osp.join(scratch, name))
                                  for path, name in ((fp32, 'eval_fp32'), (int8, 'eval_int8')))
    judged = [key for key in task.metrics if key in fp32_metrics]
    if not judged:
        raise ValueError(f'the config\'s evaluator reports none of {list(task.metrics)} '
                         f'(it reports {sorted(fp32_metrics)}): nothing judges the INT8 model')
    reports, accepted = [], True
    for key in judged:
        drop = fp32_metrics[key] - int8_metrics[key]
        accepted &= drop <= bound
        reports.append(f'INT8 {key} {int8_metrics[key]:.4g} vs fp32 {fp32_metrics[key]:.4g} on the test set of the '
                       f'config: {abs(drop):.4g} {"below" if drop >= 0 else "above"}, bound {bound:g}')
    return accepted, reports


def main(argv=None) -> dict:
    args = parse_args(argv)
    from lsnet.checkpoint import load_model_checkpoint
    from lsnet.deploy import int8_path, model_files, move_model, quantize_int8, runtime_of, runtime_session
    from lsnet.mm.build import build_model_from_config
    from lsnet.mm.onnx_model import calibration_feeds, export_whole_model, network_inputs, task_export_for
    from lsnet.mm.safe_io import install_safe_io

    install_safe_io()
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} not found: {path}')
    runtime = runtime_of(args.out)
    outputs = [args.out] + ([int8_path(args.out)] if args.int8 else [])
    for path in (file for output in outputs for file in model_files(output)):
        if osp.exists(path) and not args.overwrite:
            raise FileExistsError(f'{path} exists; pass --overwrite to replace it')
    model, cfg = build_model_from_config(Config.fromfile(args.config), args.cfg_options, pretrained=False)
    load_model_checkpoint(model, args.checkpoint)
    model.eval()
    task = task_export_for(model)
    size = tuple(args.size) if args.size else (256, 320)
    folder = osp.dirname(osp.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        suffix = osp.splitext(args.out)[1]
        fp32 = export_whole_model(model, osp.join(scratch, 'model' + suffix), size, dynamic=not args.fixed_shape)
        # check the graph at another size than the traced one (the same one with --fixed-shape)
        check_size = size if args.fixed_shape else (size[0] + 32, size[1] + 64)
        x = torch.randn(1, 3, *check_size, generator=torch.Generator().manual_seed(0))
        inputs = network_inputs(task, model, x)
        got = runtime_session(fp32).run(None, {name: value.numpy() for name, value in inputs.items()})
        with torch.no_grad():
            want = task.network(model).eval()(*inputs.values())
        want = want if isinstance(want, tuple) else (want,)
        if got[0].dtype.kind == 'i':
            report = f'labels agree on {np.mean(got[0] == want[0].numpy()) * 100:.2f}% of pixels'
        else:
            error = max(float(np.abs(g - w.numpy()).max() / (np.abs(w.numpy()).max() + 1e-12))
                        for g, w in zip(got, want))
            report = f'max difference {error:.1e} relative'
        print(f'{task.name}: {runtime} vs PyTorch at {check_size[0]}x{check_size[1]}: {report}')
        produced = [fp32]
        if args.int8:
            feeds = calibration_feeds(task.runtime(model, fp32), calibration_dataloader(cfg), args.calib_images)
            int8 = int8_path(fp32)
            quantize_int8(fp32, int8, feeds)
            produced.append(int8)
            print(f'INT8: calibrated on {len(feeds)} training images')
            if not args.no_int8_check:
                accepted, reports = int8_verdict(task, cfg, fp32, int8, scratch, args.int8_max_drop)
                print('\n'.join(reports))
                if not accepted:
                    move_model(fp32, args.out)
                    rejected = int8_path(args.out, '.int8.rejected')
                    move_model(int8, rejected)
                    print(f'wrote {args.out}; the INT8 model is beyond the bound: kept as {rejected}, not as '
                          f'{outputs[1]}', file=sys.stderr)
                    raise SystemExit(INT8_REJECTED_EXIT_STATUS)
            else:
                print('INT8: accuracy not checked (--no-int8-check)')
        for source, target in zip(produced, outputs):
            move_model(source, target)
            size_mib = sum(osp.getsize(file) for file in model_files(target)) / 2 ** 20
            print(f'wrote {target} ({size_mib:.1f} MiB)')
    return dict(outputs=outputs)


if __name__ == '__main__':
    import_installed_tasks()
    run_cli(main)
