"""The DDP pieces of a training run: the wrapped model and each rank's share of validation."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.engine.distributed import is_distributed
from pixelseg.errors import ConfigError


def wrap_model(model: nn.Module, config: Config, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` under ``torchrun`` (``model`` itself otherwise).

    With ``train.sync_batchnorm`` its BatchNorm layers become ``SyncBatchNorm`` first (in
    place: the job's model and its checkpoints keep the same parameters and keys). Mask R-CNN
    runs look for unused parameters (an image without objects leaves the mask head idle).

    Raises:
        ConfigError: ``train.sync_batchnorm`` on a device other than CUDA.
    """
    if not is_distributed():
        return model
    if config.train.sync_batchnorm:
        if device.type != "cuda":
            raise ConfigError(
                "train.sync_batchnorm: PyTorch's SyncBatchNorm runs on CUDA only; on the CPU "
                "leave it off (or use a GroupNorm model, which needs no syncing)"
            )
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        assert converted is model  # only children are replaced: the job's model stays valid
    return DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=config.task == "instance",
    )


def val_indices(loader: DataLoader) -> list[int]:
    """The split places of the images a validation loader yields, in its order."""
    return [index for batch in loader.batch_sampler or [] for index in batch]
