# The training hooks that carry the project's safety under any launcher (mmdet's, mmseg's or mim's
# train.py too): RNG states in checkpoints for exact resumption, a stop on a non-finite loss before a
# broken checkpoint is written, the class count checked against the head. The runtime bases take their
# custom_hooks from this list; tools/train.py adds any of them that a config of another origin lacks.
SAFETY_HOOKS = [dict(type='RNGStateHook'), dict(type='NonFiniteLossHook'), dict(type='ClassCountCheckHook')]
