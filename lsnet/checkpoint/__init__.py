"""Checkpoint files, one module per job: reading them without running code (``reading``), loading
their weights into a model strictly (``matching``), writing them atomically (``writing``). Torch only;
``lsnet.mm.safe_io`` plugs reading and writing into MMEngine, and ``lsnet.mm.workdir`` holds MMEngine's
work-dir policy (which checkpoint to resume from)."""
from .matching import (adapt_first_conv, check_model_checkpoint, load_model_checkpoint, load_pretrained_file,
                       load_state_dict_checked, non_finite_tensors, select_prefix, state_dict_mismatch,
                       unwrap_if_wrapped, unwrap_state_dict)
from .reading import CheckpointError, allow_metadata_types, read_checkpoint
from .writing import TEMP_SUFFIX, DiskFullError, atomic_output, atomic_write, remove_interrupted_writes, save_checkpoint

__all__ = ['CheckpointError', 'DiskFullError', 'TEMP_SUFFIX', 'adapt_first_conv', 'allow_metadata_types',
           'atomic_output', 'atomic_write', 'check_model_checkpoint', 'load_model_checkpoint', 'load_pretrained_file',
           'load_state_dict_checked', 'non_finite_tensors', 'read_checkpoint', 'remove_interrupted_writes',
           'save_checkpoint', 'select_prefix', 'state_dict_mismatch', 'unwrap_if_wrapped', 'unwrap_state_dict']
