"""Evaluation: scoring transcriptions against references (``metrics``, ``scoring``),
evaluation runs (``run``), aggregation and reports (``aggregate``, ``report``), parameter
sweeps (``sweep``) and plots (``plots``)."""
