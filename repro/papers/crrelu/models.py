"""A plain ViT (pre-norm blocks, class token, learned position embedding) whose MLP-block activation is the
only thing that changes between runs; the attention, the norms and the head keep their own functions."""

import torch
from torch import nn

from repro.papers.crrelu.activations import make_activation


class MLPBlock(nn.Module):
    def __init__(self, width: int, hidden: int, activation: nn.Module) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(width, hidden), activation, nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int, activation: nn.Module) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = MLPBlock(width, hidden, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, image_size: int, channels: int, patch: int, width: int, depth: int, heads: int, hidden: int,
                 classes: int, activation: str, crrelu_eps: float = 0.01) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch}")
        self.patch = patch
        tokens = (image_size // patch) ** 2
        self.embed = nn.Linear(channels * patch * patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, hidden, make_activation(activation, crrelu_eps))
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, tokens, C p p), row-major over the patch grid."""
        b, c, _, _ = images.shape
        p = self.patch
        x = images.unfold(2, p, p).unfold(3, p, p)                # (B, C, H/p, W/p, p, p)
        return x.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed(self.patches(images))
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

    def crrelu_eps(self) -> list[float]:
        """The learned eps of each block's CRReLU (empty for the other activations)."""
        return [float(b.mlp.act.eps.detach()) for b in self.blocks if hasattr(b.mlp.act, "eps")]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on the weight matrices only: not on biases, norms, the position embedding, the class token,
    PReLU's slope or CRReLU's eps (decay would pull eps to 0 and CRReLU back to ReLU)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim <= 1 or name in ("pos_embed", "cls_token") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
