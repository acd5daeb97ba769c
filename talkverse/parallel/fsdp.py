"""``--dit_fsdp``: FSDP2 sharding of the DiT's weights over the ranks of one video (docs/parallel.md).

Each rank keeps 1/N of every tensor; a unit's weights are all-gathered just before it runs and freed after. The units
are each transformer block with its audio injector (as in training, ``talkverse.training.parallelize``) and the rest
at the root. The causal audio encoder stays whole on every rank: the pipeline runs it outside the DiT's forward (once
per clip), where FSDP could not gather it, and it is < 5 % of the weights. Inference only: every rank must call every
sharded layer equally often, which the pipeline guarantees (the host shares its settings and latents; with
--cfg_parallel the two branches run the same layers on different inputs) and the audio injector keeps (one call per
layer, even on a shard without noisy tokens: ``talkverse.models.audio_injector``).
"""

from __future__ import annotations

import torch


def apply_weight_sharding(model: torch.nn.Module, mesh) -> torch.nn.Module:
    """Shard ``model`` (a TalkVerseTransformer3DModel) over the 1-D DeviceMesh ``mesh``, in place."""
    from torch.distributed.fsdp import fully_shard

    inj = model.audio_injector
    for i, block in enumerate(model.blocks):
        j = inj.block_to_injector.get(i)
        fully_shard(block if j is None else [block, inj.injector[j], inj.injector_adain_layers[j]], mesh=mesh,
                    reshard_after_forward=True)
    fully_shard(model, mesh=mesh, reshard_after_forward=True,
                ignored_params=set(model.casual_audio_encoder.parameters()))
    return model
