"""Samplers that know about distributed training.

Lightning swaps a plain shuffling or sequential sampler for a ``DistributedSampler``, but
wraps any other sampler in ``DistributedSamplerWrapper``, which lets every process draw
its own weighted sample and then keeps a slice of it: processes whose random streams
differ draw different lists, and the slices then overlap or miss items. The balanced
sampler here draws one list per epoch from a generator seeded by ``(seed, epoch)``, the
same on every process, and each process keeps every ``num_replicas``-th index from its
rank, so the processes see disjoint parts of one balanced draw. Being a
``DistributedSampler``, Lightning leaves it alone.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


class BalancedDistributedSampler(DistributedSampler):
    """``num_samples`` indices drawn with replacement with probability ``weights`` (see
    :func:`vidfake.train.data.balanced_sampler_weights`), split across processes.

    Every process gets ``ceil(num_samples / num_replicas)`` indices (the draw is padded
    with its own first indices so all processes run the same number of batches, which
    DDP needs). Call :meth:`set_epoch` each epoch (Lightning does) for a new draw."""

    def __init__(self, dataset: Dataset, weights: torch.Tensor, num_samples: int | None = None,
                 num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        if self.weights.ndim != 1 or len(self.weights) != len(dataset):
            raise ValueError(f"need one weight per item: {tuple(self.weights.shape)} for {len(dataset)} items")
        if not bool((self.weights > 0).any()):
            raise ValueError("all sampler weights are zero")
        self.total_draw = len(dataset) if num_samples is None else int(num_samples)
        self.num_samples = math.ceil(self.total_draw / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_draw, replacement=True, generator=generator).tolist()
        while len(drawn) < self.total_size:
            drawn += drawn[: self.total_size - len(drawn)]
        return iter(drawn[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples
