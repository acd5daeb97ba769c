"""Training data: metadata rows, window sampling, ROI weights, the text cache, the datasets (raw clips and cached
latents) and the bucket sampler (``batches``). Import the submodules."""
