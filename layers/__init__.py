"""Layers: ``Module``, ``Parameter``, containers and the layer classes, with PyTorch's names,
constructor arguments, defaults, initialization and state-dict keys."""

from layers import utils  # layers.utils.clip_grad_norm_, as torch.nn.utils
from layers.activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from layers.container import ModuleDict, ModuleList, Sequential
from layers.conv import Conv2d, ConvTranspose2d
from layers.dropout import Dropout, Dropout2d
from layers.linear import Flatten, Identity, Linear
from layers.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from layers.module import Module, RemovableHandle
from layers.normalization import BatchNorm2d, InstanceNorm2d
from layers.padding import (
    CircularPad2d,
    ConstantPad2d,
    ReflectionPad2d,
    ReplicationPad2d,
    ZeroPad2d,
)
from layers.parameter import Parameter
from layers.pooling import AvgPool2d, MaxPool2d, MaxUnpool2d
from layers.upsample import Upsample

__all__ = [
    "utils",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm2d",
    "CircularPad2d",
    "ConstantPad2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "Flatten",
    "Identity",
    "InstanceNorm2d",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "MaxUnpool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "ReflectionPad2d",
    "RemovableHandle",
    "ReplicationPad2d",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Upsample",
    "ZeroPad2d",
]
