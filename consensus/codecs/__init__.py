"""Update encodings: how a member's update travels between its trainer and the content store.

One file per codec, all behind :class:`abc.Codec`; ``registry.CODECS`` names them for task
specs (``encoding`` in :class:`consensus.task_spec.TaskSpec`); :mod:`pipeline` is the wire
format (a self-describing safetensors file) and the bounded decoder every receiver runs;
:mod:`feedback` keeps a sender's top-k residual (never sent).
"""
