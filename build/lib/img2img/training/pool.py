"""The CycleGAN image pool (Shrivastava et al. 2017): D sees a history of generated images.

Classic behaviour: while the pool fills, each new image is stored and returned; once it is
full, with probability 1/2 a random stored image is returned and replaced by the new one,
otherwise the new image is returned. The randomness comes from the pool's own seeded
generator (not the global RNG), and `state_dict` holds images and generator state, so a
resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []  # each (1, C, H, W), detached
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) new fakes -> (B, C, H, W) fakes for the discriminator (detached)."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach().split(1):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {
            "images": [t.cpu() for t in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [t.to(device) for t in state["images"]]
        self.generator.set_state(state["generator"])
