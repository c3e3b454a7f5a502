"""An independent, plainly written cramming loop: the paper's protocol (docs/concepts.md, "The
optimization") for one text at a time, with torch's own AdamW. It shares no code with the engine,
so that the parity tests compare two implementations, not one with itself."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ReferenceRun:
    steps: int
    best_accuracy: float
    best_step: int
    min_loss: float
    losses: list[float]
    best_memory: torch.Tensor


def reference_cram(model, token_ids: list[int], init: torch.Tensor, lr: float = 1e-2,
                   max_steps: int = 5000, patience: int = 2000) -> ReferenceRun:
    """Optimize (k, d) [mem] vectors `init` for one text on a frozen model.

    Loss: mean CE of predicting t_2..t_N from the positions of t_1..t_{N-1}, the [mem]
    positions' logits dropped. AdamW(lr, betas (0.9, 0.9), weight decay 0.01). The state of
    the best accuracy so far is kept (best so far starts at 0); stop at 100% accuracy or
    after `patience` steps without a higher accuracy."""
    ids = torch.tensor([token_ids], device=model.device)
    k = init.shape[0]
    memory = torch.nn.Parameter(init.detach().clone().float().to(model.device)[None])
    optimizer = torch.optim.AdamW([memory], lr=lr, betas=(0.9, 0.9), weight_decay=0.01)
    token_embeds = model.get_input_embeddings()(ids)
    mask = torch.ones(1, k + ids.shape[1], dtype=torch.long, device=model.device)
    losses, best_accuracy, best_step, since_best = [], 0.0, 0, 0
    best_memory = memory.detach()[0].clone()
    for step in range(1, max_steps + 1):
        embeds = torch.cat([memory, token_embeds], dim=1)
        logits = model(inputs_embeds=embeds, attention_mask=mask).logits[:, k:-1].float()
        labels = ids[:, 1:]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        accuracy = (logits.argmax(-1) == labels).float().mean().item()
        losses.append(loss.item())
        if accuracy > best_accuracy or step == 1:
            if accuracy > best_accuracy:
                best_accuracy, since_best = accuracy, 0
            else:
                since_best += 1  # the first state is kept, but 0% is no improvement
            best_step, best_memory = step, memory.detach()[0].clone()
        else:
            since_best += 1
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if best_accuracy == 1.0 or since_best >= patience:
            break
    return ReferenceRun(steps=len(losses), best_accuracy=best_accuracy, best_step=best_step,
                        min_loss=min(losses), losses=losses, best_memory=best_memory)
