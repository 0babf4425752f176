"""Data: datasets, a batching/shuffling loader, and real data that needs no download.

    from new_grad.data import DataLoader, load_digits
    digits = load_digits()
    for images, labels in DataLoader(digits.train, batch_size=64, shuffle=True, seed=0):
        ...

Imports only the engine (to mark batches constant): never nn, optim or the command line.
"""

from .dataset import ArrayDataset, Dataset, Subset, random_split
from .datasets import Splits, load_digits, load_mnist_idx, load_mnist_npy, read_idx
from .loader import DataLoader, default_collate

__all__ = [
    "Dataset",
    "ArrayDataset",
    "Subset",
    "random_split",
    "DataLoader",
    "default_collate",
    "Splits",
    "load_digits",
    "load_mnist_npy",
    "load_mnist_idx",
    "read_idx",
]
