"""Aggregation rules, one file per algorithm, all behind :class:`abc.AggregationRule`.

``registry.RULES`` and ``registry.WRAPPERS`` name them for task specs; ``registry.build_rule``
builds one from a spec's ``aggregation``.  Shared numeric kernels are in ``kernels``.
"""
