"""A NaN on one rank only: with ``--on-nonfinite skip`` every rank skips the step together, and the
stop-on-NaN hook stops every rank, instead of one rank leaving DDP's all-reduce while the others wait."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('mmengine')

from mm_helpers import ROOT  # noqa: E402

WORKER = textwrap.dedent('''
    import os, sys, types
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    rank, world, init = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=world)
    import lsnet  # noqa
    from lsnet.mm.optim import SkipNonFiniteOptimWrapper
    from lsnet.mm.nonfinite import NonFiniteLossHook
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(4, 1))
    wrapper = SkipNonFiniteOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.module.weight.detach().clone()
    for step in range(3):
        loss = model(torch.ones(2, 4)).sum()
        if step == 1 and rank == 1:
            loss = loss * float('nan')
        wrapper.update_params(loss)
    changed = not torch.equal(before, model.module.weight.detach())
    print(f'rank {rank} skipped {wrapper.skipped_steps} changed {changed}', flush=True)
    # the stop hook: only rank 0 sees a NaN, both must stop
    runner = types.SimpleNamespace(optim_wrapper=types.SimpleNamespace(), iter=7, epoch=0, work_dir=sys.argv[4],
                                   logger=types.SimpleNamespace(warning=print))
    outputs = {'loss': torch.tensor(float('nan') if rank == 0 else 1.0)}
    try:
        NonFiniteLossHook().after_train_iter(runner, 0, outputs=outputs)
        print(f'rank {rank} continued', flush=True)
    except RuntimeError as err:
        print(f'rank {rank} stopped: {str(err)[:60]}', flush=True)
    # Leave together, then skip the interpreter's teardown: gloo's threads and the file store may
    # otherwise race at exit on a loaded machine ("terminate called without an active exception").
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)
''')


@pytest.mark.serial
def test_nan_on_one_rank_is_decided_by_all(tmp_path):
    init = f'file://{tmp_path / "rendezvous"}'
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(rank), '2', init, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for rank, (proc, (out, err)) in enumerate(zip(procs, outs)):
        assert f'rank {rank} skipped 1 changed True' in out, out + err[-2000:]
        assert f'rank {rank} stopped: non-finite loss at iteration 8' in out, out + err[-2000:]
        assert proc.returncode == 0, err[-2000:]
