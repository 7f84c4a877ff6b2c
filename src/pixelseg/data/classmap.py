"""Class maps: how raw mask values or colours become class indices.

Four encodings, chosen from :class:`~pixelseg.config.DataConfig`:

* ``index`` — the mask holds class indices ``0 .. num_classes - 1`` directly;
* ``values`` — ``mask_values[i]`` is the stored value of class ``i`` (ISBI's 0/255);
* ``threshold`` — a binary mask: a stored value ``>= mask_threshold`` is the second class, below
  the first (soft and anti-aliased masks, whose edges hold values between the two);
* ``palette`` — ``palette[i]`` is the RGB colour of class ``i`` (a single-channel mask is then read
  as indices, so CamVid's index masks can carry display colours too).

Void values (negative ones too, Sen1Floods11's -1) / the void colours and the value
``ignore_index`` itself become ``ignore_index``. Anything else is refused with the unknown values
and their pixel counts, because a silently mis-mapped mask is how IoU becomes 0 or NaN; when the
unknown values look like anti-aliasing the error suggests ``data.mask_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelseg.config import DataConfig
from pixelseg.errors import ConfigError, DataError

_MAX_LISTED = 8
#: Anti-aliasing: the two most frequent values hold at least this share of the pixels...
_TWO_VALUE_SHARE = 0.8
#: ...and at least this many distinct values lie between them (edge shades).
_MIN_SHADES = 2


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct display colours, the PASCAL VOC bit-interleaving scheme (class 0 is black)."""
    colours = []
    for index in range(num_classes):
        r = g = b = 0
        code = index
        for shift in range(7, -1, -1):
            r |= ((code >> 0) & 1) << shift
            g |= ((code >> 1) & 1) << shift
            b |= ((code >> 2) & 1) << shift
            code >>= 3
        colours.append((r, g, b))
    return tuple(colours)


def _pack(colours: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours to one int64 code each."""
    colours = colours.astype(np.int64)
    return (colours[..., 0] << 16) | (colours[..., 1] << 8) | colours[..., 2]


def _describe(values: np.ndarray, counts: np.ndarray, colour: bool) -> str:
    order = np.argsort(-counts)
    parts = []
    for i in order[:_MAX_LISTED]:
        value = int(values[i])
        label = f"({value >> 16},{(value >> 8) & 255},{value & 255})" if colour else str(value)
        parts.append(f"{label} ({int(counts[i])} px)")
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return ", ".join(parts) + more


@dataclass(frozen=True)
class ClassMap:
    """Class names, display colours and the raw-mask encoding of a dataset.

    Attributes:
        classes: class names; their positions are the class indices.
        palette: one display colour per class (the mask palette when masks are colour-coded).
        mode: ``"index"``, ``"values"``, ``"threshold"`` or ``"palette"``.
        mask_values: stored value per class (``mode == "values"``; optional for threshold).
        void_values: stored values that become ``ignore_index``.
        void_colours: RGB colours that become ``ignore_index`` (``mode == "palette"``).
        ignore_index: the label of void pixels in encoded masks.
        mask_threshold: stored values at or above it are class 1 (``mode == "threshold"``).
    """

    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mode: str
    mask_values: tuple[int, ...] = ()
    void_values: tuple[int, ...] = ()
    void_colours: tuple[tuple[int, ...], ...] = ()
    ignore_index: int = 255
    mask_threshold: float | None = None

    @classmethod
    def from_config(cls, data: DataConfig) -> ClassMap:
        """Build the class map of a ``[data]`` section.

        Raises:
            ConfigError: no classes, or an ``ignore_index`` that collides with a class index.
        """
        if not data.classes:
            raise ConfigError("data.classes: list the class names (at least one)")
        n = len(data.classes)
        if 0 <= data.ignore_index < n:
            raise ConfigError(
                f"data.ignore_index = {data.ignore_index} is a class index (0..{n - 1}); "
                f"use {n} or 255"
            )
        mode = "palette" if data.palette else "values" if data.mask_values else "index"
        if data.mask_threshold is not None:
            mode = "threshold"
        void_colours = ((data.void_colour,) if data.void_colour else ()) + data.void_colours
        return cls(
            classes=data.classes,
            palette=data.palette or default_palette(n),
            mode=mode,
            mask_values=data.mask_values,
            void_values=data.void_values,
            void_colours=tuple(tuple(c[:3]) for c in void_colours),
            ignore_index=data.ignore_index,
            mask_threshold=data.mask_threshold,
        )

    @property
    def num_classes(self) -> int:
        """Number of real classes (void excluded)."""
        return len(self.classes)

    @property
    def expects_colour(self) -> bool:
        """Whether masks are RGB palette images."""
        return self.mode == "palette"

    def _expected(self) -> str:
        if self.mode == "values":
            known = ", ".join(str(v) for v in self.mask_values)
        else:
            known = f"0..{self.num_classes - 1}"
        void = [str(v) for v in self.void_values]
        if self.ignore_index not in self.mask_values:
            void.append(str(self.ignore_index))
        return f"expected {known}" + (f" or void {', '.join(void)}" if void else "")

    def _threshold_hint(self, raw: np.ndarray) -> str:
        """A suggestion of ``data.mask_threshold`` when ``raw`` looks like an anti-aliased (or
        soft) binary mask, else ``""``.

        Either the two class values are the extremes with every other value between them, or
        most pixels hold two values and several distinct values lie between those two.
        """
        if self.num_classes != 2:
            return ""
        finite = raw[np.isfinite(raw)] if raw.dtype.kind == "f" else raw
        finite = finite[~np.isin(finite, self.void_values)] if self.void_values else finite
        values, counts = np.unique(finite, return_counts=True)
        if len(values) < 3:
            return ""
        known = self.mask_values if self.mode == "values" else (0, 1)
        low, high = float(values[0]), float(values[-1])
        if (low, high) != (float(min(known)), float(max(known))):
            top = np.sort(values[np.argsort(-counts, kind="stable")[:2]])
            low, high = float(top[0]), float(top[1])
            between = int(((values > low) & (values < high)).sum())
            share = counts[np.isin(values, top)].sum() / counts.sum()
            if share < _TWO_VALUE_SHARE or between < _MIN_SHADES or between != len(values) - 2:
                return ""
        shades = len(values) - 2
        return (
            f"; it looks anti-aliased (values {low:g} and {high:g} with {shades} other values "
            f"between them): for a binary mask set data.mask_threshold = {(low + high) / 2:g} "
            f"(stored values >= it become {self.classes[1]!r}, below it {self.classes[0]!r})"
        )

    def _encode_threshold(self, raw: np.ndarray) -> np.ndarray:
        assert self.mask_threshold is not None
        encoded = (raw >= self.mask_threshold).astype(np.int64)
        void = np.isin(raw, self.void_values) if self.void_values else np.zeros(raw.shape, bool)
        if raw.dtype.kind == "f":
            void |= np.isnan(raw)
        encoded[void] = self.ignore_index
        return encoded

    def _encode_values(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        if self.mode == "threshold":
            return self._encode_threshold(raw)
        if raw.dtype.kind == "f":
            if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
                raise DataError(
                    path,
                    "mask holds non-integer values; expected class indices"
                    + self._threshold_hint(raw),
                )
            raw = raw.astype(np.int64)
        # a lookup table over every stored value (shifted by ``low`` for negative void values);
        # -1 marks values the map does not know
        low = min(int(raw.min()) if raw.size else 0, 0, *self.void_values)
        top = int(raw.max()) if raw.size else 0
        lut = np.full(
            max(top, self.ignore_index, *self.void_values, *self.mask_values, 0) + 1 - low, -1
        )
        for value in self.void_values:
            lut[value - low] = self.ignore_index
        if self.ignore_index >= 0:
            lut[self.ignore_index - low] = self.ignore_index
        if self.mode == "values":
            for index, value in enumerate(self.mask_values):
                lut[value - low] = index
        else:
            lut[-low : self.num_classes - low] = np.arange(self.num_classes)
        encoded = lut[raw.astype(np.int64) - low] if low < 0 else lut[raw]
        unknown = encoded < 0
        if unknown.any():
            values, counts = np.unique(raw[unknown], return_counts=True)
            raise DataError(
                path,
                f"unknown mask values {_describe(values, counts, False)}; {self._expected()}"
                + self._threshold_hint(raw),
            )
        return encoded

    def _encode_colours(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        codes = _pack(raw)
        known = {int(c): i for i, c in enumerate(_pack(np.array(self.palette, dtype=np.int64)))}
        for colour in self.void_colours:
            known[int(_pack(np.array(colour[:3])))] = self.ignore_index
        uniq, inverse = np.unique(codes, return_inverse=True)
        lut = np.array([known.get(int(c), -1) for c in uniq], dtype=np.int64)
        encoded = lut[inverse.reshape(codes.shape)]
        if (lut < 0).any():
            bad = lut < 0
            counts = np.bincount(inverse.ravel(), minlength=len(uniq))[bad]
            raise DataError(
                path,
                f"unknown palette colours {_describe(uniq[bad], counts, True)}; "
                f"the palette has {self.num_classes} classes",
            )
        return encoded

    def encode(self, raw_mask: np.ndarray, path: str | Path = "") -> np.ndarray:
        """Map a raw mask to class indices.

        Args:
            raw_mask: ``(H, W)`` stored values, or ``(H, W, 3)`` RGB colours.
            path: the mask's file, named in errors.

        Returns:
            ``(H, W)`` int64 class indices with ``ignore_index`` for void.

        Raises:
            DataError: unknown values or colours (listed with pixel counts, with a suggested
                ``data.mask_threshold`` when they look anti-aliased), or an RGB mask where class
                indices / values are expected.
        """
        if raw_mask.ndim == 3:
            if not self.expects_colour:
                raise DataError(
                    path,
                    f"RGB colour mask where class indices are expected ({self._expected()}); "
                    "list the colours in data.palette",
                )
            return self._encode_colours(raw_mask[..., :3], path)
        if raw_mask.ndim != 2:
            raise DataError(path, f"mask has shape {raw_mask.shape}; expected (H, W) or (H, W, 3)")
        return self._encode_values(raw_mask, path)

    def count(self, label: np.ndarray) -> np.ndarray:
        """Pixels per class of an encoded ``(H, W)`` label map, void excluded; ``(num_classes,)``.

        Returns:
            int64 counts.
        """
        kept = label[(label >= 0) & (label < self.num_classes)]
        return np.bincount(kept.ravel(), minlength=self.num_classes).astype(np.int64)
