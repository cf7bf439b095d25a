"""Layers: ``Module``, ``Parameter``, containers and the layer classes, with PyTorch's names,
constructor arguments, defaults, initialization and state-dict keys."""

from layers.container import ModuleDict, ModuleList, Sequential
from layers.module import Module, RemovableHandle
from layers.parameter import Parameter

__all__ = [
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "RemovableHandle",
    "Sequential",
]
