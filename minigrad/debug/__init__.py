"""Tools to look inside a running model, as PyTorch users know them.

- :func:`to_dot`, :func:`render`: the backward graph of a tensor as Graphviz DOT text or a
  picture, with each op's output shape and dtype and the bytes it saved for backward.
- :class:`profile`: times every op's forward and backward (synchronizing the GPU), with a
  table per op and shape and a Chrome trace, as ``torch.profiler.profile``.
- :class:`detect_anomaly`: raises :class:`AnomalyError` at the first NaN or Inf in a forward
  output or a gradient, naming the op and the line that called it, as
  ``torch.autograd.detect_anomaly``.

All three watch ops through :func:`minigrad.autograd.add_observer`; outside their blocks the
engine pays one list test per op.
"""

from minigrad.debug.anomaly import AnomalyError, detect_anomaly
from minigrad.debug.graph import render, to_dot
from minigrad.debug.profiler import OpEvent, profile

__all__ = ["AnomalyError", "OpEvent", "detect_anomaly", "profile", "render", "to_dot"]
