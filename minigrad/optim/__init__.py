"""Optimizers and learning-rate schedulers with PyTorch's names, formulas and state dicts.

``SGD``, ``Adam``, ``AdamW`` and ``RMSprop`` follow ``torch.optim`` update for update; their
``state_dict()`` has PyTorch's layout and keys, and ``minigrad.optim.lr_scheduler`` holds the
schedulers of ``torch.optim.lr_scheduler``. On the CPU every step runs as a few passes over
cache-sized chunks of all parameters at once, spread over the thread pool
(:mod:`minigrad.optim.foreach`); on a GPU each parameter's update is one fused CUDA kernel.
"""

from minigrad.optim import lr_scheduler
from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.rmsprop import RMSprop
from minigrad.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
