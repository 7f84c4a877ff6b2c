"""A weighted sum of losses built from ``[loss]`` in the config.

``name = "auto"`` is resolved before, by :func:`pixelseg.data.loss_rule.choose_loss`: the caller
(the semantic job or ``pixelseg check``) counts the training split's pixels per class, calls it,
logs the reason, and hands the resolved name to :func:`build_loss`.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from pixelseg.config import LossConfig
from pixelseg.errors import ConfigError
from pixelseg.losses.cross_entropy import CrossEntropyLoss
from pixelseg.losses.dice import DiceLoss
from pixelseg.losses.focal import FocalLoss

LOSS_NAMES = ("ce", "dice", "focal", "dice_ce", "focal_dice")


class WeightedSumLoss(nn.Module):
    r"""A weighted sum of loss terms, :math:`L = \sum_k w_k L_k`.

    Shape:
        - logits: ``(N, C, H, W)``; target: ``(N, H, W)``; output: scalar.

    Args:
        terms: Name -> (loss module, weight), e.g. ``{"ce": (CrossEntropyLoss(), 1.0)}``.
    """

    def __init__(self, terms: Mapping[str, tuple[nn.Module, float]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("a weighted sum needs at least one loss term")
        self.terms = nn.ModuleDict({name: module for name, (module, _) in terms.items()})
        self.weights = {name: float(weight) for name, (_, weight) in terms.items()}

    def forward_terms(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Each term's unweighted value and the weighted total under ``"loss"``.

        Args:
            logits: ``(N, C, H, W)`` raw scores.
            target: ``(N, H, W)`` class map.

        Returns:
            ``{"loss": total, "<name>": term, ...}`` (terms keep their graph; detach to log).
        """
        values = {name: module(logits, target) for name, module in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        assert isinstance(total, Tensor)
        return {"loss": total, **values}

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The weighted total; see :meth:`forward_terms`."""
        return self.forward_terms(logits, target)["loss"]


def build_loss(
    loss_cfg: LossConfig,
    *,
    num_classes: int,
    ignore_index: int,
    class_weights: Tensor | None,
) -> nn.Module:
    """The loss the config names, as a :class:`WeightedSumLoss`.

    ``"ce"`` → ``ce_weight`` · CE; ``"dice"`` → ``dice_weight`` · Dice; ``"focal"`` →
    ``focal_weight`` · focal; ``"dice_ce"`` → ``ce_weight`` · CE + ``dice_weight`` · Dice;
    ``"focal_dice"`` → ``focal_weight`` · focal + ``dice_weight`` · Dice. ``class_weights`` go to
    CE and focal (Dice already balances classes). ``num_classes == 1`` means binary (1-channel
    sigmoid logits).

    Args:
        loss_cfg: The ``[loss]`` section; ``name="auto"`` must be resolved with
            :func:`pixelseg.data.loss_rule.choose_loss` before.
        num_classes: Number of output channels of the model.
        ignore_index: Target value of pixels that never count.
        class_weights: ``(C,)`` per-class weights (``(2,)`` when binary) or ``None``.

    Returns:
        The loss module, ``loss(logits, target) -> scalar``.

    Raises:
        ValueError: ``name`` is ``"auto"`` (a caller bug).
        ConfigError: an unknown name or a class-weight count that does not match.
    """
    if loss_cfg.name == "auto":
        raise ValueError('loss name "auto" must be resolved with choose_loss before build_loss')
    if loss_cfg.name not in LOSS_NAMES:
        raise ConfigError(f"loss.name: {loss_cfg.name!r} is not one of {', '.join(LOSS_NAMES)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if class_weights is not None and class_weights.numel() != max(num_classes, 2):
        raise ConfigError(f"loss: {class_weights.numel()} class weights for {num_classes} classes")
    terms: dict[str, tuple[nn.Module, float]] = {}
    if loss_cfg.name in ("ce", "dice_ce"):
        ce = CrossEntropyLoss(class_weights=class_weights, ignore_index=ignore_index)
        terms["ce"] = (ce, loss_cfg.ce_weight)
    if loss_cfg.name in ("focal", "focal_dice"):
        focal = FocalLoss(
            gamma=loss_cfg.focal_gamma, class_weights=class_weights, ignore_index=ignore_index
        )
        terms["focal"] = (focal, loss_cfg.focal_weight)
    if loss_cfg.name in ("dice", "dice_ce", "focal_dice"):
        mode = "binary" if num_classes == 1 else "multiclass"
        dice = DiceLoss(mode=mode, ignore_index=ignore_index, smooth=loss_cfg.smooth)
        terms["dice"] = (dice, loss_cfg.dice_weight)
    return WeightedSumLoss(terms)
