"""Training never goes on, nor saves, on non-finite numbers.

A non-finite loss (a recording with absurd values that got past the checks, an unstable
step) would turn every weight into NaN, and a model of NaNs encodes every file as code 0.
The guard keeps each step's loss on the device with the names of the files whose crops fed
it, and checks them together at log and checkpoint steps (one host sync per check, not per
step): training stops at the first bad step, naming its files, before anything is saved.
Weights are checked again before every save.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bat_core.errors import BatError

if TYPE_CHECKING:
    import torch

NAMES_SHOWN = 10


class NonFiniteLossError(BatError):
    """Training met a NaN or infinite loss (or weights): it stopped, and saved nothing from that step on."""


class LossGuard:
    def __init__(self):
        self._pending: list[tuple[int, torch.Tensor, list[str]]] = []

    def note(self, step: int, loss: torch.Tensor, files: list[str]) -> None:
        """Step ``step``'s loss (kept on the device) and the files its batch was cropped from."""
        self._pending.append((step, loss.detach(), files))

    def check(self) -> None:
        """NonFiniteLossError naming the first step since the last check whose loss is not finite."""
        import torch

        if not self._pending:
            return
        pending, self._pending = self._pending, []
        losses = torch.stack([loss.float() for _, loss, _ in pending])
        finite = torch.isfinite(losses).cpu()
        if bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        step, loss, files = pending[first]
        raise NonFiniteLossError(
            f"training stopped: the loss became {float(loss)} at step {step}, on a batch cropped from "
            f"{_names(files)}; check these recordings (bat-core check) and leave them out (annotations.csv or "
            "--where) or fix them, then train again; nothing from this step on was saved")


def require_finite_weights(model: torch.nn.Module, where: str) -> None:
    """NonFiniteLossError if any weight or float buffer of ``model`` is NaN or infinite (one sync)."""
    import torch

    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise NonFiniteLossError(f"the model's weights hold NaN or infinite values: not saved to {where}; "
                                 "training diverged (try a lower --lr) or its input held absurd values")


def _names(files: list[str]) -> str:
    unique = sorted(set(files))
    shown = ", ".join(unique[:NAMES_SHOWN])
    return shown + (f" and {len(unique) - NAMES_SHOWN} more" if len(unique) > NAMES_SHOWN else "")
