"""Sequential, ModuleList and ModuleDict against torch.nn's: the same operations on both give
the same names, state-dict keys, reprs and outputs; indexing errors."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import layers as L
import minigrad as mg


def both(make):
    """``make(nn)`` for layers and for torch.nn."""
    return make(L), make(torch.nn)


def keys(module):
    return list(module.state_dict())


def assert_same(ours, theirs):
    assert keys(ours) == keys(theirs)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert repr(ours) == repr(theirs)


def test_sequential_runs_in_order_like_torch(parity):
    ours, theirs = both(lambda nn: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)))
    x = np.random.default_rng(0).standard_normal((5, 3))
    parity.run(ours, theirs, [x], "cpu", dtype=np.float64)
    assert_same(ours, theirs)


def test_sequential_indexing_slicing_and_append():
    ours, theirs = both(lambda nn: nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 3)))
    assert isinstance(ours[0], L.Linear) and ours[-1] is ours[2]
    for model in (ours, theirs):
        assert len(model) == 3
    head, tail = ours[:2], theirs[:2]
    assert isinstance(head, L.Sequential) and head[0] is ours[0]
    assert_same(head, tail)
    assert_same(ours[1:], theirs[1:])
    assert_same(ours[::2], theirs[::2])
    assert ours.append(L.Sigmoid()) is ours
    theirs.append(torch.nn.Sigmoid())
    assert_same(ours, theirs)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]


def test_sequential_set_and_delete_renumber_like_torch():
    def make(nn):
        return nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 2), nn.Linear(2, 1))

    ours, theirs = both(make)
    ours[1], theirs[1] = L.Tanh(), torch.nn.Tanh()
    assert_same(ours, theirs)
    del ours[0], theirs[0]
    assert_same(ours, theirs)
    del ours[-2:], theirs[-2:]
    assert_same(ours, theirs)


def test_sequential_from_ordered_dict():
    def make(nn):
        return nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))

    ours, theirs = both(make)
    assert_same(ours, theirs)
    assert ours.conv is ours[0]
    assert_same(ours[1:], theirs[1:])


def test_module_list_like_torch():
    ours, theirs = both(lambda nn: nn.ModuleList([nn.Linear(2, 2), nn.ReLU()]))
    for model, nn in ((ours, L), (theirs, torch.nn)):
        model.append(nn.Linear(2, 3))
        model.extend([nn.Tanh(), nn.Linear(3, 1)])
        model.insert(1, nn.Sigmoid())
        model[0] = nn.Linear(2, 5)
    assert_same(ours, theirs)
    assert len(ours) == 6 and ours[-1] is ours[5]
    assert_same(ours[1:4], theirs[1:4])
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    del ours[1], theirs[1]
    assert_same(ours, theirs)


def test_module_list_repr_compresses_repeats_like_torch():
    ours, theirs = both(lambda nn: nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.Tanh()]))
    assert repr(ours) == repr(theirs)
    assert repr(L.ModuleList()) == repr(torch.nn.ModuleList())


def test_module_dict_like_torch():
    def make(nn):
        return nn.ModuleDict({"b": nn.Linear(1, 2), "a": nn.ReLU()})

    ours, theirs = both(make)
    for model, nn in ((ours, L), (theirs, torch.nn)):
        model["c"] = nn.Linear(2, 1)
        model.update({"d": nn.Tanh(), "b": nn.Linear(1, 3)})
        model.update([("e", nn.Sigmoid())])
    assert_same(ours, theirs)
    assert list(ours) == list(theirs) == list(ours.keys())
    assert "c" in ours and "z" not in ours
    assert ours.pop("a") is not None and theirs.pop("a") is not None
    del ours["d"], theirs["d"]
    assert_same(ours, theirs)
    assert [k for k, _ in ours.items()] == [k for k, _ in theirs.items()]
    assert len(list(ours.values())) == len(ours) == len(theirs)
    ours.clear()
    theirs.clear()
    assert_same(ours, theirs)


def test_containers_in_a_model_give_torchs_keys():
    def make(nn):
        model = nn.Module()
        model.blocks = nn.ModuleList([nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))] * 2)
        model.heads = nn.ModuleDict({"seg": nn.Conv2d(1, 3, 1)})
        return model

    ours, theirs = both(make)
    assert_same(ours, theirs)
    assert keys(ours)[:2] == ["blocks.0.0.weight", "blocks.0.0.bias"]


def test_index_errors():
    seq = L.Sequential(L.ReLU())
    with pytest.raises(IndexError, match="index 1 is out of range for Sequential of 1"):
        seq[1]
    with pytest.raises(IndexError, match="index -2 is out of range for ModuleList of 1"):
        L.ModuleList([L.ReLU()])[-2]
    with pytest.raises(TypeError):
        seq["0"]
    with pytest.raises(KeyError):
        L.ModuleDict()["missing"]
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        L.Sequential(1)


def test_containers_forward():
    x = mg.ones(2, 3)
    assert L.Sequential()(x) is x
    with pytest.raises(NotImplementedError):
        L.ModuleList()(x)
