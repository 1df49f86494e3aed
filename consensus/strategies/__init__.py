"""Aggregation rules, one file per algorithm, all behind :class:`AggregationStrategy`."""
