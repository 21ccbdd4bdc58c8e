"""Stage 1: data. IDX parsing and the built-in datasets."""

from digitkit.data.datasets import SPECS, Dataset, load_dataset, locate, split_validation
from digitkit.data.idx import IdxFormatError, read_idx, write_idx

__all__ = ["SPECS", "Dataset", "IdxFormatError", "load_dataset", "locate", "read_idx", "split_validation", "write_idx"]
