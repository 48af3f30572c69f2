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


class PairedBalancedSampler(BalancedDistributedSampler):
    """The balanced draw, except that a share ``pair_share`` of every batch is fakes beside
    their own source: pairs ``(fake, real)`` from :func:`vidfake.train.data.fake_source_pairs`,
    drawn with the fake's weight and laid out next to each other inside one batch.

    Both halves of a pair are yielded as ``(index, pair_seed)``: the data set hands the seed
    to the transform, which then gives the two the same augmentations (the same codec chain,
    rescale, colour and flip) and leaves the real one un-blended, so within a pair only the
    manipulation differs. Singles are plain indices. Batches are drawn for all processes
    from one ``(seed, epoch)`` generator and dealt out whole (batch ``b`` to rank ``b %
    num_replicas``), so a pair never straddles two batches or two processes; the loader's
    ``batch_size`` must be the one given here."""

    def __init__(self, dataset: Dataset, weights: torch.Tensor, pairs: list[tuple[int, int]], batch_size: int,
                 pair_share: float, num_samples: int | None = None, num_replicas: int = 1, rank: int = 0,
                 seed: int = 0) -> None:
        super().__init__(dataset, weights, num_samples=num_samples, num_replicas=num_replicas, rank=rank, seed=seed)
        if not 0.0 <= pair_share <= 1.0:
            raise ValueError(f"pair_share must be in [0, 1], got {pair_share}")
        if batch_size < 2:
            raise ValueError(f"paired batches need batch_size >= 2, got {batch_size}")
        self.batch_size = int(batch_size)
        self.pairs = list(pairs)
        self.pairs_per_batch = int(round(pair_share * self.batch_size / 2)) if self.pairs else 0
        pair_weights = self.weights[[fake for fake, _ in self.pairs]] if self.pairs else torch.zeros(0)
        if self.pairs_per_batch and not bool((pair_weights > 0).any()):
            raise ValueError("every paired fake has sampler weight zero")
        self.pair_weights = pair_weights
        self.batches_per_replica = math.ceil(self.num_samples / self.batch_size)
        self.num_samples = self.batches_per_replica * self.batch_size

    def __iter__(self) -> Iterator[int | tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n_batches = self.batches_per_replica * self.num_replicas
        n_pairs = self.pairs_per_batch
        n_single = self.batch_size - 2 * n_pairs
        singles = torch.multinomial(self.weights, n_batches * n_single, replacement=True,
                                    generator=generator).view(n_batches, n_single).tolist() if n_single else \
            [[] for _ in range(n_batches)]
        if n_pairs:
            drawn = torch.multinomial(self.pair_weights, n_batches * n_pairs, replacement=True,
                                      generator=generator).view(n_batches, n_pairs).tolist()
            seeds = torch.randint(0, 2**62, (n_batches, n_pairs), generator=generator).tolist()
        for b in range(self.rank, n_batches, self.num_replicas):
            for p in range(n_pairs):
                fake, real = self.pairs[drawn[b][p]]
                yield (fake, seeds[b][p])
                yield (real, seeds[b][p])
            yield from singles[b]
