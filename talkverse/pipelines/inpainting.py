"""Masked denoising for dubbing only a region (issue 20, RePaint-style; docs/inference.md "Dubbing only the face").

Inside the crop a pixel mask [H, W] (1 = regenerate) selects the region; :func:`latent_mask` carries it to the latent
grid [1, 1, 1, h, w] (a latent cell is regenerated if any of its pixels is). After every denoising step,
:func:`repaint_blend` replaces the latents outside the mask by the source crop's latents ``x0`` noised to the sigma
the solver has just reached, with the clip's initial noise ``eps``:

    x <- m * x + (1 - m) * ((1 - sigma) * x0 + sigma * eps)

so the model always sees the true surroundings, and after the last step (sigma 0) the latents outside the mask are
exactly the source crop's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def latent_mask(mask: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """A pixel mask [H, W] in [0, 1] -> the latent mask [1, 1, 1, h, w] in {0, 1} (max over each cell's pixels)."""
    m = (mask.float() > 0).float()[None, None]
    return (F.adaptive_max_pool2d(m, latent_hw) > 0).float()[:, :, None]


def repaint_blend(x: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, sigma: float | torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """``x`` [1, C, F, h, w] with the cells outside ``mask`` [1, 1, 1, h, w] set to ``(1 - sigma) x0 + sigma eps``."""
    known = (1 - sigma) * x0.to(x) + sigma * eps.to(x)
    m = mask.to(x)
    return m * x + (1 - m) * known


class RepaintBlend:
    """One clip's blend, called after each scheduler step with the solver's new sigma."""

    def __init__(self, x0: torch.Tensor, eps: torch.Tensor, mask: torch.Tensor):
        self.x0, self.eps, self.mask = x0, eps, mask

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        return repaint_blend(x, self.x0, self.eps, sigma, self.mask)
