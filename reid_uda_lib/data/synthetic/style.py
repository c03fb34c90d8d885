"""Domain styles of the synthetic generator (:mod:`reid_uda_lib.data.synthetic`): the clothing palette and
:class:`DomainStyle`, the look of one domain (light, colour cast, background, blur/noise/JPEG, attribute
frequencies), with :func:`domain_styles` moving domain B ``gap`` times from A's style towards B's reference."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

JPEG_QUALITY_A = 90

# A limited clothing palette (so clothing colours collide across identities); per-identity jitter is added.
PALETTE = {
    "black": (28, 28, 32), "charcoal": (62, 62, 66), "grey": (130, 130, 132), "white": (226, 224, 218),
    "navy": (32, 42, 92), "blue": (52, 102, 190), "lightblue": (132, 172, 222), "red": (182, 38, 42),
    "maroon": (108, 32, 42), "green": (44, 122, 62), "olive": (108, 108, 52), "yellow": (222, 192, 54),
    "orange": (222, 122, 44), "pink": (222, 142, 172), "purple": (112, 62, 142), "brown": (108, 74, 46),
    "beige": (202, 182, 142),
}
PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array([PALETTE[k] for k in PALETTE_NAMES], dtype=np.float64)
_DARK = {"black", "charcoal", "navy", "maroon", "brown", "olive", "grey"}
# Domain A favours light/saturated clothes, B (at gap=1) dark ones.
_WEIGHTS_A = tuple(0.6 if n in _DARK else 1.2 for n in PALETTE_NAMES)
_WEIGHTS_B = tuple(1.4 if n in _DARK else 0.75 for n in PALETTE_NAMES)
# Trousers/skirts are mostly dark, jeans or khaki (multiplies the domain weights): more look-alikes.
_LOWER_PRIOR = tuple({"black": 3.0, "charcoal": 2.0, "navy": 3.0, "blue": 3.0, "grey": 2.0, "beige": 1.5,
                      "brown": 1.5}.get(n, 0.3) for n in PALETTE_NAMES)
SKIN = np.array([(236, 200, 170), (214, 168, 128), (176, 124, 88), (128, 86, 58), (88, 58, 40)], float)
HAIR = np.array([(20, 18, 18), (56, 36, 24), (104, 70, 40), (196, 160, 96), (150, 148, 146),
                 (140, 60, 30)], float)
SHOES = np.array([(20, 20, 20), (230, 230, 230), (96, 64, 40), (120, 120, 125), (170, 40, 40),
                  (40, 60, 120)], float)
PATTERNS = ("plain", "plain", "hstripes", "vstripes", "checks", "logo", "twotone", "jacket")
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class DomainStyle:
    """The look of one domain. ``gap`` interpolates B's fields between A's and B's reference values."""

    name: str
    num_cameras: int
    brightness: float = 0.0                 # added after contrast, in [0, 1] units
    contrast: float = 1.0                   # around mid-grey
    gamma: float = 1.0                      # > 1 darkens mid-tones
    white_balance: tuple = (1.03, 1.0, 0.95)  # per-channel gains (colour cast)
    camera_light_spread: float = 0.10       # std of per-camera gain
    bg_urban: float = 0.0                   # 0: plain indoor walls/floor colours, 1: grey-blue street colours
    bg_texture: float = 0.015               # amplitude of low-frequency background texture
    bg_grain: float = 0.008                 # amplitude of fine background noise
    bg_clutter: float = 1.5                 # mean number of objects (windows, posters, cars) per scene
    blur: float = 1.0                       # down-then-up sampling factor (1 = sharp)
    noise: float = 0.004                    # std of Gaussian sensor noise
    jpeg_quality: int = JPEG_QUALITY_A
    palette_weights: tuple = _WEIGHTS_A     # clothing colour weights, aligned with PALETTE_NAMES
    backpack_p: float = 0.18
    bag_p: float = 0.18
    hat_p: float = 0.15
    scarf_p: float = 0.12

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["palette_weights"] = dict(zip(PALETTE_NAMES, (round(w, 4) for w in self.palette_weights)))
        return d


STYLE_A = DomainStyle(name="A", num_cameras=4)
#: B's reference style, reached at gap=1.
STYLE_B_REF = DomainStyle(
    name="B", num_cameras=5, brightness=-0.03, contrast=0.9, gamma=1.1, white_balance=(0.97, 0.99, 1.04),
    camera_light_spread=0.14, bg_urban=1.0, bg_texture=0.07, bg_grain=0.03, bg_clutter=3.0, blur=1.4,
    noise=0.01, jpeg_quality=80, palette_weights=_WEIGHTS_B, backpack_p=0.30, bag_p=0.35, hat_p=0.22,
    scarf_p=0.2)


def domain_styles(gap: float = 1.0) -> tuple[DomainStyle, DomainStyle]:
    """Styles ``(A, B)`` for a domain gap: B = A moved ``gap`` times towards B's reference style.

    Linear in ``gap`` for brightness, contrast, gamma, background texture/grain/clutter/colours, blur,
    noise and JPEG quality; geometric for white-balance gains and palette weights; on the logit scale for
    accessory probabilities. Results are clipped to valid ranges (contrast >= 0.3, gamma in [0.5, 2.5],
    blur <= 4, JPEG quality >= 30...). ``gap=0`` gives B exactly A's style (only the identities, cameras
    and the camera count differ).
    """
    if not 0.0 <= float(gap) <= 3.0:
        raise ValueError(f"gap must be in [0, 3], got {gap!r}")
    a, b, g = STYLE_A, STYLE_B_REF, float(gap)

    def lin(name: str, lo: float, hi: float) -> float:
        return float(np.clip(getattr(a, name) + g * (getattr(b, name) - getattr(a, name)), lo, hi))

    def geo(name: str) -> tuple:
        va, vb = np.asarray(getattr(a, name), float), np.asarray(getattr(b, name), float)
        return tuple(float(x) for x in va * (vb / va) ** g)

    def logit(name: str) -> float:
        pa, pb = getattr(a, name), getattr(b, name)
        la, lb = math.log(pa / (1 - pa)), math.log(pb / (1 - pb))
        return float(1.0 / (1.0 + math.exp(-(la + g * (lb - la)))))

    style_b = DomainStyle(
        name="B", num_cameras=b.num_cameras,
        brightness=lin("brightness", -0.3, 0.3), contrast=lin("contrast", 0.3, 2.0),
        gamma=lin("gamma", 0.5, 2.5), white_balance=geo("white_balance"),
        camera_light_spread=lin("camera_light_spread", 0.0, 0.3), bg_urban=lin("bg_urban", 0.0, 1.0),
        bg_texture=lin("bg_texture", 0.0, 0.3), bg_grain=lin("bg_grain", 0.0, 0.2),
        bg_clutter=lin("bg_clutter", 0.0, 12.0), blur=lin("blur", 1.0, 4.0), noise=lin("noise", 0.0, 0.08),
        jpeg_quality=int(round(lin("jpeg_quality", 30, 95))), palette_weights=geo("palette_weights"),
        backpack_p=logit("backpack_p"), bag_p=logit("bag_p"), hat_p=logit("hat_p"), scarf_p=logit("scarf_p"))
    return a, style_b
