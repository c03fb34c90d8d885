"""A procedural two-domain person re-ID dataset, written in the Market-1501 layout.

Each identity is a fixed set of body proportions, clothing colours and patterns, hair, shoes and
accessories (:class:`Person`). Each image of it is one camera's view of that person: viewpoint (front,
back, side), scale/shift/aspect, mirroring, pose jitter, per-camera light and background, sometimes an
occluder. The two domains A and B share the generator and differ in *style* (:class:`DomainStyle`):
illumination, colour cast, background texture, blur/noise/JPEG strength, camera count and the
distribution of attributes (B: darker clothes, more bags).

``gap`` (default 1.0, sensible range 0..2) scales every style difference between A and B at once
(:func:`domain_styles`): numeric settings move linearly from A's value (``gap=0``: B has exactly A's style)
to B's reference value (``gap=1``) and beyond (``gap=2`` doubles each difference, clipped to sane
bounds); colour gains and palette weights move geometrically, probabilities on the logit scale. It does
not change identities' geometry, the split sizes or the camera counts (A 4, B 5).

Command line (also ``python -m reid_uda_lib synthetic``)::

    python -m reid_uda_lib.data.synthetic --out data/synthetic [--seed 0] [--gap 1.0] \\
        [--train-ids 100] [--test-ids 100] [--height 128 --width 64] [--overwrite]

writes ``OUT/A`` and ``OUT/B``, each with ``bounding_box_train/``, ``query/``, ``bounding_box_test/``
(names ``PPPP_cCs1_FFFFFF_00.jpg``) and ``synthetic.json`` (the parameters). Output is byte-identical for
the same parameters; a folder that already holds the same parameters is reused as is.

Defaults (seed 0): A has 4 cameras, 1,127 train / 248 query / 861 gallery images; B has 5 cameras,
1,305 / 281 / 1,079; about 10 s on one CPU core.

Difficulty at gap=1 (reproduced by commands in the repo): with the ``cpu`` preset (resnet18, 128x64),
``make demo`` trains on A and scores 74.0 mAP on A's test split but 29.6 on B; trained on B's own labels
(the oracle row) it reaches 69.5 on B. ``tests/test_domain_gap.py`` checks the gap with a tiny CNN (A 28.3,
B 15.6, and 24.2 on a B generated with gap=0, i.e. in A's style).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

__all__ = [
    "GENERATOR_VERSION", "SPLITS", "SyntheticSpec", "DomainStyle", "Person", "Camera", "domain_styles",
    "sample_person", "sample_cameras", "BodyFrame", "draw_person", "render_image", "generate_domain",
    "generate_synthetic_pair", "contact_sheet", "main",
]

#: Bumped whenever the pixels for a given spec change; part of the reuse check.
GENERATOR_VERSION = "1"
SPLITS = ("bounding_box_train", "query", "bounding_box_test")
DEFAULT_TRAIN_IDS = 100
DEFAULT_TEST_IDS = 100
SUPERSAMPLE = 2             # draw at 2x and box-downsample: cheap anti-aliasing
JPEG_QUALITY_A = 90
_NAME_RE = re.compile(r"([-\d]+)_c(\d+)")

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


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticSpec:
    """Everything that determines the generated bytes (compared when an existing folder is reused)."""

    seed: int = 0
    gap: float = 1.0
    num_train_ids: int = DEFAULT_TRAIN_IDS
    num_test_ids: int = DEFAULT_TEST_IDS
    height: int = 128
    width: int = 64
    version: str = GENERATOR_VERSION

    def __post_init__(self) -> None:
        def _int(name: str, lo: int, hi: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"synthetic data: '{name}' must be an integer in [{lo}, {hi}], got {v!r}")
        _int("seed", 0, 2**63 - 1)
        _int("num_train_ids", 2, 4000)
        _int("num_test_ids", 2, 4000)
        _int("height", 32, 1024)
        _int("width", 16, 512)
        if not isinstance(self.gap, (int, float)) or not 0.0 <= float(self.gap) <= 3.0:
            raise ValueError(f"synthetic data: 'gap' must be a number in [0, 3] (0 = same style, "
                             f"1 = default), got {self.gap!r}")
        object.__setattr__(self, "gap", float(self.gap))
        for name in ("seed", "num_train_ids", "num_test_ids", "height", "width"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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


@dataclass
class Person:
    """One identity: fixed geometry (in units of body height) and appearance (RGB 0..255)."""

    pid: int
    head_r: float
    neck: float
    torso_len: float
    shoulder_w: float
    waist_w: float
    hip_w: float
    leg_t: float
    arm_t: float
    height_frac: float
    skin: tuple
    hair: tuple
    hair_style: str            # short | long | bun
    upper: tuple
    upper2: tuple
    pattern: str
    stripe_period: float
    long_sleeves: bool
    lower: tuple
    lower_type: str            # trousers | shorts | skirt
    shoes: tuple
    hat: Optional[tuple] = None
    scarf: Optional[tuple] = None
    backpack: Optional[tuple] = None
    bag: Optional[tuple] = None
    bag_side: int = 1          # +1: bag on the person's left (image right in a front view)


@dataclass
class Camera:
    """One camera of a domain: viewpoint habits, framing, light and its scene (background strip)."""

    index: int                 # 1-based, as in the file names
    view_probs: tuple          # P(front), P(back), P(side)
    scale: float
    aspect: float
    dy: float
    mirror: bool
    gain: float
    tint: tuple
    light_dir: float           # -1..1, which side of the figure is lit
    occlusion_p: float
    scene: np.ndarray = field(repr=False)   # (H*S, 3*W*S, 3) uint8


def _color(rng: np.random.Generator, weights: Sequence[float], jitter: float = 5.0) -> tuple:
    w = np.asarray(weights, float)
    i = rng.choice(len(w), p=w / w.sum())
    return _jitter(rng, _PALETTE_RGB[i], jitter)


def _jitter(rng: np.random.Generator, rgb: np.ndarray, s: float) -> tuple:
    return tuple(int(v) for v in np.clip(np.asarray(rgb, float) + rng.normal(0.0, s, 3), 0, 255))


def sample_person(rng: np.random.Generator, pid: int, style: DomainStyle) -> Person:
    """Draw one identity's fixed parameters (attributes follow ``style``'s distribution)."""
    w = style.palette_weights
    shoulder = rng.uniform(0.095, 0.135)
    waist = shoulder * rng.uniform(0.72, 0.95)
    upper = _color(rng, w)
    upper2 = _color(rng, w)
    while np.abs(np.subtract(upper2, upper)).sum() < 90:   # a pattern needs a visible second colour
        upper2 = _color(rng, w)
    r = rng.random(4)
    return Person(
        pid=int(pid), head_r=rng.uniform(0.058, 0.072), neck=rng.uniform(0.008, 0.02),
        torso_len=rng.uniform(0.26, 0.33), shoulder_w=shoulder, waist_w=waist,
        hip_w=waist * rng.uniform(0.95, 1.12), leg_t=rng.uniform(0.032, 0.05),
        arm_t=rng.uniform(0.024, 0.034), height_frac=rng.uniform(0.78, 0.92),
        skin=_jitter(rng, SKIN[rng.integers(len(SKIN))], 6), hair=_jitter(rng, HAIR[rng.integers(len(HAIR))], 8),
        hair_style=str(rng.choice(["short", "short", "long", "bun"])),
        upper=upper, upper2=upper2, pattern=str(rng.choice(PATTERNS)),
        stripe_period=rng.uniform(0.03, 0.06), long_sleeves=bool(rng.random() < 0.6),
        lower=_color(rng, np.multiply(w, _LOWER_PRIOR)),
        lower_type=str(rng.choice(["trousers"] * 4 + ["shorts", "skirt"])),
        shoes=_jitter(rng, SHOES[rng.integers(len(SHOES))], 8),
        hat=_color(rng, w) if r[0] < style.hat_p else None,
        scarf=_color(rng, w) if r[1] < style.scarf_p else None,
        backpack=_color(rng, w) if r[2] < style.backpack_p else None,
        bag=_color(rng, w) if r[3] < style.bag_p else None,
        bag_side=int(rng.choice([-1, 1])),
    )


# ----------------------------------------------------------------------------------------------
# Scenes (per-camera backgrounds)
# ----------------------------------------------------------------------------------------------

_WALLS_INDOOR = np.array([(214, 204, 186), (196, 200, 204), (222, 214, 196), (188, 176, 160),
                          (204, 214, 206)], float)
_FLOORS_INDOOR = np.array([(150, 130, 110), (120, 120, 124), (170, 160, 140), (110, 96, 84)], float)
_WALLS_URBAN = np.array([(112, 116, 124), (96, 92, 88), (128, 124, 116), (84, 96, 108),
                         (140, 128, 112)], float)
_FLOORS_URBAN = np.array([(72, 74, 78), (96, 94, 90), (60, 62, 66), (86, 82, 76)], float)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise in [-1, 1]: a coarse random grid bicubically upsampled to (h, w)."""
    coarse = rng.uniform(-1, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _make_scene(rng: np.random.Generator, style: DomainStyle, h: int, w: int) -> np.ndarray:
    """A camera's background strip (h, w, 3) uint8: wall + floor, texture, clutter objects."""
    t = style.bg_urban
    iw, ifl = rng.integers(len(_WALLS_INDOOR)), rng.integers(len(_FLOORS_INDOOR))
    uw, ufl = rng.integers(len(_WALLS_URBAN)), rng.integers(len(_FLOORS_URBAN))
    wall = (1 - t) * _WALLS_INDOOR[iw] + t * _WALLS_URBAN[uw] + rng.normal(0, 8, 3)
    floor = (1 - t) * _FLOORS_INDOOR[ifl] + t * _FLOORS_URBAN[ufl] + rng.normal(0, 8, 3)
    horizon = int(h * rng.uniform(0.55, 0.75))
    y = np.arange(h, dtype=np.float32)[:, None, None]
    wall_grad = 1.0 + 0.08 * (y / h - 0.5) * rng.choice([-1, 1])
    floor_grad = 0.9 + 0.2 * (y - horizon) / max(1, h - horizon)
    img = np.where(y < horizon, wall[None, None] * wall_grad, floor[None, None] * floor_grad)
    img = np.broadcast_to(img, (h, w, 3)).astype(np.float32).copy()
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    # Clutter: windows/posters/doors on the wall, cars/bins standing on the floor.
    for _ in range(int(rng.poisson(style.bg_clutter))):
        col = tuple(int(c) for c in np.clip(wall * rng.uniform(0.4, 1.4) + rng.normal(0, 18, 3), 0, 255))
        bw, bh = int(w * rng.uniform(0.04, 0.15)), int(h * rng.uniform(0.1, 0.4))
        x0 = int(rng.uniform(0, w - bw))
        y0 = int(rng.uniform(0.05 * h, max(0.06 * h, horizon - 0.3 * bh))) if rng.random() < 0.6 \
            else int(horizon - bh * rng.uniform(0.3, 0.9))
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=col)
    # Urban scenes: paving joints on the floor (their contrast grows with bg_urban).
    step = int(h * rng.uniform(0.05, 0.09))
    if t > 0:
        joint = tuple(int(c) for c in floor * (1.0 - 0.3 * min(t, 1.0)))
        for yy in range(horizon + step, h, step):
            draw.line([(0, yy), (w, yy)], fill=joint, width=max(1, h // 100))
    img = np.asarray(out, dtype=np.float32)
    tex = _smooth_noise(rng, h, w, cell=max(4, h // 12))
    img = img * (1.0 + style.bg_texture * 2.0 * tex[..., None])
    if style.bg_grain > 0:
        img = img + 255.0 * style.bg_grain * rng.standard_normal((h, w, 1), dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_cameras(rng: np.random.Generator, style: DomainStyle, height: int, width: int) -> list[Camera]:
    """The cameras of a domain, each with its viewpoint habits, framing, light and scene."""
    h, w = height * SUPERSAMPLE, width * SUPERSAMPLE
    cams = []
    for i in range(style.num_cameras):
        cams.append(Camera(
            index=i + 1, view_probs=tuple(float(p) for p in rng.dirichlet([1.5, 1.5, 1.0])),
            scale=rng.uniform(0.9, 1.05), aspect=rng.uniform(0.9, 1.12), dy=rng.uniform(-0.03, 0.02),
            mirror=bool(i % 2 == 1), gain=float(np.clip(1.0 + rng.normal(0, style.camera_light_spread), 0.6, 1.4)),
            tint=tuple(float(x) for x in np.clip(1.0 + rng.normal(0, 0.04, 3), 0.85, 1.15)),
            light_dir=rng.uniform(-1, 1), occlusion_p=rng.uniform(0.0, 0.3),
            scene=_make_scene(rng, style, h, 3 * w)))
    return cams


# ----------------------------------------------------------------------------------------------
# Drawing a person
# ----------------------------------------------------------------------------------------------

class BodyFrame:
    """Where a body goes on the canvas: maps body coordinates (x: units of body height from the body
    axis, positive = the person's left in a front view; y: 0 = top of head, 1 = soles) to pixels.

    ``cx`` body axis and ``top`` head top (pixels), ``u`` body height (pixels), ``ax`` horizontal
    stretch (camera aspect), ``flip`` -1 mirrors the figure.
    """

    def __init__(self, cx: float, top: float, u: float, ax: float, flip: int) -> None:
        self.cx, self.top, self.u, self.ax, self.flip = cx, top, u, ax, flip

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.cx + self.flip * x * self.u * self.ax, self.top + y * self.u)

    def w(self, half: float) -> int:
        return max(1, int(round(2 * half * self.u * self.ax)))


def _limb(draw: ImageDraw.ImageDraw, pts: Sequence[tuple], width: int, color: tuple) -> None:
    draw.line(pts, fill=color, width=width)
    r = width / 2.0
    for x, y in pts:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)


def _pattern_fill(img: Image.Image, poly: Sequence[tuple], c1: tuple, c2: tuple, pattern: str,
                  period_px: float, front: bool) -> None:
    """Fill a polygon with a clothing pattern (numpy inside the polygon's bounding box)."""
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    x0, y0 = int(math.floor(min(xs))), int(math.floor(min(ys)))
    x1, y1 = int(math.ceil(max(xs))) + 1, int(math.ceil(max(ys))) + 1
    bw, bh = x1 - x0, y1 - y0
    if bw <= 1 or bh <= 1:
        return
    mask = Image.new("L", (bw, bh), 0)
    ImageDraw.Draw(mask).polygon([(x - x0, y - y0) for x, y in poly], fill=255)
    yy, xx = np.mgrid[0:bh, 0:bw]
    p = max(2.0, period_px)
    if pattern == "hstripes":
        sel = (yy // p) % 2 == 1
    elif pattern == "vstripes":
        sel = ((xx - bw / 2) // p) % 2 == 1
    elif pattern == "checks":
        sel = ((yy // p) + ((xx - bw / 2) // p)) % 2 == 1
    elif pattern == "twotone":
        sel = yy < bh * 0.42
    elif pattern == "logo" and front:
        sel = (np.abs(xx - bw / 2) < bw * 0.17) & (np.abs(yy - bh * 0.33) < bh * 0.12)
    elif pattern == "jacket" and front:
        sel = np.abs(xx - bw / 2) < bw * 0.14
    else:
        sel = np.zeros((bh, bw), bool)
    arr = np.where(sel[..., None], np.array(c2, np.uint8), np.array(c1, np.uint8)).astype(np.uint8)
    img.paste(Image.fromarray(arr), (x0, y0), mask)


def draw_person(img: Image.Image, person: Person, view: str, frame: BodyFrame,
                pose: Optional[dict] = None) -> None:
    """Draw ``person`` seen from ``view`` (front | back | side) onto an RGBA canvas, in place.

    ``frame`` places the body on the canvas; ``pose`` (optional) has ``stride`` (leg spread, units of
    body height), ``swing`` (arm angle, radians), ``lean`` (head shift), ``side_dir`` (+1/-1, the
    direction a side view walks to).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    pose = pose or {}
    stride, swing = pose.get("stride", 0.05), pose.get("swing", 0.1)
    lean, sdir = pose.get("lean", 0.0), pose.get("side_dir", 1)
    d = ImageDraw.Draw(img)
    P, f = person, frame
    side = view == "side"
    front = view == "front"
    # In a back view the person's left is on the image left; in a side view only the depth axis remains.
    lr = 1 if front else -1
    wf = 0.62 if side else 1.0                     # side views are narrower
    r = P.head_r
    ys = 2 * r + P.neck                            # shoulder line
    yw = ys + P.torso_len                          # waist
    yc = yw + 0.05                                 # crotch
    yf = 0.965                                     # ankles
    sw, ww, hw = P.shoulder_w * wf, P.waist_w * wf, P.hip_w * wf
    hx = lean + (0.012 * sdir if side else 0.0)    # head offset
    lower_col = P.lower

    # --- behind the body --------------------------------------------------------------------
    if side and P.backpack is not None:
        bx = -sdir * sw
        pts = [f.p(bx, ys + 0.02), f.p(bx - sdir * 0.075, ys + 0.035), f.p(bx - sdir * 0.075, yw - 0.03),
               f.p(bx, yw - 0.02)]
        d.polygon(pts, fill=P.backpack)
    if P.hair_style == "long" and view != "back":
        if side:
            d.rectangle(_box(f.p(hx - sdir * r * 0.9, r), f.p(hx + sdir * r * 0.1, ys + 0.07)), fill=P.hair)
        else:
            d.rectangle(_box(f.p(hx - r * 0.95, r), f.p(hx + r * 0.95, ys + 0.07)), fill=P.hair)
    if side:  # far arm, slightly shaded
        far = tuple(int(c * 0.8) for c in (P.upper if P.long_sleeves else P.skin))
        sh = f.p(0.0, ys + 0.02)
        hand = f.p(-sdir * math.sin(swing) * 0.33, ys + 0.02 + math.cos(swing) * 0.33)
        _limb(d, [sh, hand], f.w(P.arm_t), far)

    # --- legs and shoes ---------------------------------------------------------------------
    leg_w = f.w(P.leg_t)
    if side:
        hips = [(0.0, yc), (0.0, yc)]
        ankles = [(sdir * stride * 1.6, yf), (-sdir * stride * 1.6, yf)]
    else:
        hips = [(-hw * 0.5, yc), (hw * 0.5, yc)]
        ankles = [(-hw * 0.5 - stride * 0.4, yf), (hw * 0.5 + stride * 0.4, yf - stride * 0.15)]
    for (hx0, hy0), (ax0, ay0) in zip(hips, ankles):
        top, bot = f.p(hx0, hy0 - 0.03), f.p(ax0, ay0)
        if P.lower_type == "trousers":
            _limb(d, [top, bot], leg_w, lower_col)
        else:
            _limb(d, [top, bot], max(1, int(leg_w * 0.8)), P.skin)
            if P.lower_type == "shorts":
                k = 0.4
                mid = (top[0] + k * (bot[0] - top[0]), top[1] + k * (bot[1] - top[1]))
                _limb(d, [top, mid], leg_w + 1, lower_col)
        shoe_dx = (0.03 * sdir) if side else 0.0
        c = f.p(ax0 + shoe_dx, ay0 + 0.018)
        rx, ry = f.u * f.ax * (0.045 if side else P.leg_t * 1.05), f.u * 0.018
        d.ellipse([c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry], fill=P.shoes)
    if P.lower_type == "skirt":
        d.polygon([f.p(-ww, yw), f.p(ww, yw), f.p(hw * 1.35, yc + 0.16), f.p(-hw * 1.35, yc + 0.16)],
                  fill=lower_col)
    else:  # the pelvis block joins the legs to the torso
        d.polygon([f.p(-ww, yw - 0.01), f.p(ww, yw - 0.01), f.p(hw, yc + 0.01), f.p(-hw, yc + 0.01)],
                  fill=lower_col)

    # --- torso ------------------------------------------------------------------------------
    torso = [f.p(-sw * 0.78, ys - 0.012), f.p(sw * 0.78, ys - 0.012), f.p(sw, ys + 0.03),
             f.p(ww, yw + 0.005), f.p(-ww, yw + 0.005), f.p(-sw, ys + 0.03)]
    period = P.stripe_period * f.u
    pattern = P.pattern if not side or P.pattern in ("hstripes", "checks", "twotone", "vstripes") else "plain"
    if pattern == "plain":
        d.polygon(torso, fill=P.upper)
    else:
        _pattern_fill(img, torso, P.upper, P.upper2, pattern, period, front)
    if P.backpack is not None and view == "back":
        d.rounded_rectangle(_box(f.p(-sw * 0.72, ys + 0.03), f.p(sw * 0.72, yw - 0.03)),
                            radius=max(1, f.w(0.01)), fill=P.backpack)
    if P.backpack is not None and front:
        strap = tuple(int(c * 0.7) for c in P.backpack)
        for s in (-1, 1):
            _limb(d, [f.p(s * sw * 0.55, ys), f.p(s * sw * 0.6, ys + 0.16)], f.w(0.011), strap)
    if P.bag is not None and not side:
        s = P.bag_side * lr
        strap = tuple(int(c * 0.6) for c in P.bag)
        _limb(d, [f.p(s * sw * 0.6, ys), f.p(-s * ww * 0.9, yw - 0.02)], f.w(0.008), strap)
    if P.scarf is not None:
        d.polygon([f.p(-sw * 0.62, ys - 0.015), f.p(sw * 0.62, ys - 0.015), f.p(sw * 0.5, ys + 0.035),
                   f.p(-sw * 0.5, ys + 0.035)], fill=P.scarf)
        if front:
            d.rectangle(_box(f.p(sw * 0.12, ys + 0.02), f.p(sw * 0.42, ys + 0.13)), fill=P.scarf)

    # --- arms -------------------------------------------------------------------------------
    arm_w, L = f.w(P.arm_t), 0.34
    sleeve_end = 1.0 if P.long_sleeves else 0.42
    if side:
        arms = [(0.0, sdir * math.sin(swing))]
    else:
        arms = [(-1.0, -abs(math.sin(swing)) * 0.25 - 0.06), (1.0, abs(math.sin(swing * 0.7)) * 0.25 + 0.06)]
    for s, dx in arms:
        x_sh = s * (sw - P.arm_t * 0.9) if not side else 0.0
        sh = (x_sh, ys + 0.025)
        hand = (x_sh + (dx if side else s * abs(dx)) * L, ys + 0.025 + L * math.cos(dx * 0.8))
        el = (sh[0] + sleeve_end * (hand[0] - sh[0]), sh[1] + sleeve_end * (hand[1] - sh[1]))
        if sleeve_end < 1.0:
            _limb(d, [f.p(*el), f.p(*hand)], max(1, int(arm_w * 0.85)), P.skin)
        _limb(d, [f.p(*sh), f.p(*el)], arm_w, P.upper)
        hc = f.p(hand[0], hand[1] + 0.012)
        hr = f.u * f.ax * P.arm_t * 1.05
        d.ellipse([hc[0] - hr, hc[1] - hr, hc[0] + hr, hc[1] + hr], fill=P.skin)
    if P.bag is not None:   # the bag hangs at the hip, over the arm
        s = P.bag_side * lr if not side else -sdir * 0.3
        bx = s * (ww + 0.02)
        d.rounded_rectangle(_box(f.p(bx - 0.05, yw - 0.04), f.p(bx + 0.05, yw + 0.07)),
                            radius=max(1, f.w(0.008)), fill=P.bag)
    if side and P.backpack is not None:   # strap over the near shoulder
        _limb(d, [f.p(-sdir * 0.01, ys), f.p(sdir * 0.01, ys + 0.14)], f.w(0.01),
              tuple(int(c * 0.7) for c in P.backpack))

    # --- head -------------------------------------------------------------------------------
    neck = f.p(hx * 0.5, ys - 0.01)
    nw = f.w(r * 0.45)
    _limb(d, [f.p(hx * 0.6, 1.6 * r), neck], nw, P.skin if view != "back" or P.hair_style != "long" else P.hair)
    hc = f.p(hx, r)
    rx, ry = r * 0.82 * f.u * f.ax, r * f.u
    head_box = [hc[0] - rx, hc[1] - ry, hc[0] + rx, hc[1] + ry]
    if view == "back":
        d.ellipse(head_box, fill=P.hair)
        if P.hair_style == "long":
            d.rectangle(_box(f.p(hx - r * 0.9, r), f.p(hx + r * 0.9, ys + 0.08)), fill=P.hair)
    else:
        d.ellipse(head_box, fill=P.skin)
        hair_box = [head_box[0] - 1, head_box[1] - 1, head_box[2] + 1, head_box[3] - ry * 0.75]
        d.chord([hair_box[0], hair_box[1], hair_box[2], hair_box[1] + 2 * ry * 0.8], 180, 360, fill=P.hair)
        if side:  # hair covers the back of the head
            start, end = (90, 270) if sdir > 0 else (270, 90)
            d.chord(head_box, start, end, fill=P.hair)
    if P.hair_style == "bun" and P.hat is None:
        bc = f.p(hx - (sdir * r * 0.9 if side else 0.0), -0.1 * r if not side else 0.3 * r)
        br = r * 0.45 * f.u
        d.ellipse([bc[0] - br, bc[1] - br, bc[0] + br, bc[1] + br], fill=P.hair)
    if P.hat is not None:
        d.chord([head_box[0] - 1, head_box[1] - 2, head_box[2] + 1, hc[1] + ry * 0.5], 180, 360, fill=P.hat)
        if side:
            d.rectangle(_box(f.p(hx, r * 0.55), f.p(hx + sdir * r * 1.5, r * 0.75)), fill=P.hat)
        elif front:
            d.rectangle(_box(f.p(hx - r * 0.95, r * 0.55), f.p(hx + r * 0.95, r * 0.72)), fill=P.hat)


def _box(p0: tuple, p1: tuple) -> list:
    """A PIL box from two corners given in any order."""
    return [min(p0[0], p1[0]), min(p0[1], p1[1]), max(p0[0], p1[0]), max(p0[1], p1[1])]

# ----------------------------------------------------------------------------------------------
# One image
# ----------------------------------------------------------------------------------------------

def render_image(person: Person, camera: Camera, style: DomainStyle, rng: np.random.Generator,
                 height: int, width: int) -> Image.Image:
    """One RGB image (``height`` x ``width``) of ``person`` seen by ``camera`` in ``style``.

    Order: background crop → person (viewpoint, framing, pose, directional shading) → occluder →
    downsample → camera gain/tint → domain white balance, contrast/brightness, gamma → blur → noise.
    JPEG compression (``style.jpeg_quality``) happens when the image is saved.
    """
    S = SUPERSAMPLE
    ch, cw = height * S, width * S
    x_off = int(rng.integers(0, camera.scene.shape[1] - cw + 1))
    bg = camera.scene[:, x_off:x_off + cw].astype(np.float32) * float(1.0 + rng.normal(0, 0.03))
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).convert("RGBA")

    view = VIEWS[int(rng.choice(3, p=camera.view_probs))]
    pose = {"stride": rng.uniform(0.0, 0.09), "swing": rng.uniform(-0.35, 0.35),
            "lean": rng.normal(0, 0.006), "side_dir": int(rng.choice([-1, 1]))}
    u = ch * person.height_frac * camera.scale * (1.0 + rng.normal(0, 0.05))
    bottom = ch * (0.985 + camera.dy + rng.normal(0, 0.01))
    frame = BodyFrame(cx=cw / 2 + rng.normal(0, 0.035 * cw), top=bottom - u, u=u,
                   ax=camera.aspect * (1.0 + rng.normal(0, 0.05)), flip=-1 if camera.mirror else 1)
    layer = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
    draw_person(layer, person, view, frame, pose)
    # Directional light: one side of the figure brighter than the other (depends on the camera).
    arr = np.asarray(layer, dtype=np.float32)
    xs = (np.arange(cw, dtype=np.float32) - frame.cx) / (0.15 * u)
    shade = 1.0 + 0.18 * camera.light_dir * np.clip(xs, -1, 1)
    arr[..., :3] *= shade[None, :, None]
    layer = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    canvas.alpha_composite(layer)
    if rng.random() < camera.occlusion_p:
        _occlude(canvas, rng, camera)
    img = np.asarray(canvas.convert("RGB").reduce(S), dtype=np.float32) / 255.0

    # Per-image light (gain and tint) varies as much as between cameras, so that a model trained on a
    # few cameras can learn to ignore it.
    gain = camera.gain * (1.0 + rng.normal(0, 0.08)) * np.clip(1.0 + rng.normal(0, 0.035, 3), 0.9, 1.1)
    img = img * (gain * np.asarray(camera.tint) * np.asarray(style.white_balance)).astype(np.float32)
    img = np.clip((img - 0.5) * style.contrast + 0.5 + style.brightness, 0.0, 1.0) ** style.gamma
    out = Image.fromarray((img * 255.0 + 0.5).astype(np.uint8))
    if style.blur > 1.01:
        small = (max(4, round(width / style.blur)), max(8, round(height / style.blur)))
        out = out.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    if style.noise > 0:
        noisy = np.asarray(out, np.float32) + 255.0 * style.noise * rng.standard_normal((height, width, 3),
                                                                                     dtype=np.float32)
        out = Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
    return out


def _occlude(canvas: Image.Image, rng: np.random.Generator, camera: Camera) -> None:
    """A bench/car/bin across the bottom, or a pole in front of the person."""
    cw, ch = canvas.size
    d = ImageDraw.Draw(canvas)
    base = camera.scene[rng.integers(camera.scene.shape[0]), rng.integers(camera.scene.shape[1])]
    col = tuple(int(c) for c in np.clip(base * rng.uniform(0.3, 0.8) + rng.normal(0, 20, 3), 0, 255)) + (255,)
    if rng.random() < 0.6:
        top = ch * (1.0 - rng.uniform(0.15, 0.32))
        d.rectangle([-1, top, cw + 1, ch + 1], fill=col)
    else:
        x0, bw = cw * rng.uniform(0.0, 0.8), cw * rng.uniform(0.08, 0.18)
        d.rectangle([x0, -1, x0 + bw, ch + 1], fill=col)


# ----------------------------------------------------------------------------------------------
# One domain, the pair
# ----------------------------------------------------------------------------------------------

def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _plan(rng: np.random.Generator, pids: Iterable[int], num_cams: int, test: bool) -> list[tuple]:
    """``(split, pid, cam, k)`` for every image: each id in 2..min(5, #cams) cameras, 2-7 images per
    camera; for test ids one image of some cameras (at least one) is a query, the rest gallery, so every
    query keeps same-id gallery images in other cameras."""
    plan = []
    for pid in pids:
        k = int(rng.integers(2, min(num_cams, 5) + 1))
        cams = sorted(int(c) + 1 for c in rng.choice(num_cams, k, replace=False))
        counts = np.minimum(2 + rng.poisson(1.8, k), 7)
        query_cams = {c for c in cams if rng.random() < 0.8} or {cams[int(rng.integers(k))]}
        for cam, n in zip(cams, counts):
            for j in range(int(n)):
                split = ("query" if (cam in query_cams and j == 0) else "bounding_box_test") if test \
                    else "bounding_box_train"
                plan.append((split, int(pid), cam, j))
    return plan


def generate_domain(out_dir: str | Path, domain: str, style: DomainStyle, spec: SyntheticSpec,
                    progress: bool = True) -> dict:
    """Write one domain's three splits into ``out_dir`` (which must exist); returns image counts."""
    out_dir = Path(out_dir)
    dom = {"A": 0, "B": 1}[domain]
    seed = spec.seed
    rng = _rng(seed, dom, 0)
    n_ids = spec.num_train_ids + spec.num_test_ids
    pids = np.sort(rng.choice(np.arange(1, max(1500, 2 * n_ids) + 1), n_ids, replace=False))
    is_test = np.zeros(n_ids, bool)
    is_test[rng.choice(n_ids, spec.num_test_ids, replace=False)] = True
    plan = _plan(rng, pids[~is_test], style.num_cameras, False) + _plan(rng, pids[is_test], style.num_cameras, True)
    frame_no = {c: int(rng.integers(100, 2000)) for c in range(1, style.num_cameras + 1)}
    cameras = sample_cameras(_rng(seed, dom, 2), style, spec.height, spec.width)
    people = {int(p): sample_person(_rng(seed, dom, 1, int(p)), int(p), style) for p in pids}

    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in SPLITS}
    for split, pid, cam, j in tqdm(plan, desc=f"synthetic {domain}", disable=not progress, unit="img"):
        frame_no[cam] += int(rng.integers(1, 60))
        img = render_image(people[pid], cameras[cam - 1], style, _rng(seed, dom, 3, pid, cam, j),
                           spec.height, spec.width)
        img.save(out_dir / split / f"{pid:04d}_c{cam}s1_{frame_no[cam]:06d}_00.jpg", "JPEG",
                 quality=int(style.jpeg_quality))
        counts[split] += 1
    return {s: {"images": counts[s], "ids": len({p for sp, p, _, _ in plan if sp == s})} for s in SPLITS}


def _check_existing(target: Path, spec: SyntheticSpec, domain: str, overwrite: bool) -> bool:
    """True to reuse ``target``; removes it when ``overwrite``; raises when it holds other data."""
    if not target.exists():
        return False
    if not target.is_dir():
        raise NotADirectoryError(f"synthetic data: {target} exists and is not a folder")
    meta_path = target / "synthetic.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, OSError) as err:
            meta = {"spec": {"unreadable": str(err)}}
        if meta.get("spec") == spec.to_dict() and meta.get("domain") == domain:
            missing = _count_problem(target, meta.get("counts"))
            if missing is None and not overwrite:
                return True
            problem = missing or "is regenerated (overwrite)"
        else:
            old = meta.get("spec", {}) if isinstance(meta.get("spec"), dict) else {}
            diff = ", ".join(f"{k}: {old.get(k)!r} there, {v!r} asked" for k, v in spec.to_dict().items()
                             if old.get(k) != v) or f"domain: {meta.get('domain')!r} there, {domain!r} asked"
            problem = f"holds synthetic data generated with different parameters ({diff})"
    elif not any(target.iterdir()):
        target.rmdir()
        return False
    else:
        problem = "is not empty and has no synthetic.json (not a synthetic dataset, or an interrupted run)"
    if overwrite:
        shutil.rmtree(target)
        return False
    raise FileExistsError(f"synthetic data: the folder {target} {problem}; pass overwrite=True "
                          f"(--overwrite on the command line) to replace it, or choose another folder")


def _count_problem(target: Path, counts) -> Optional[str]:
    """None when every split holds the image count recorded in synthetic.json, else what differs."""
    if not isinstance(counts, dict):
        return "has a synthetic.json without recorded image counts"
    diffs = []
    for split, rec in counts.items():
        n = sum(1 for _ in (target / split).glob("*.jpg")) if (target / split).is_dir() else 0
        want = rec.get("images") if isinstance(rec, dict) else None
        if n != want:
            diffs.append(f"{split}: {n} images, {want} recorded")
    return f"does not hold the images its synthetic.json records ({', '.join(diffs)})" if diffs else None


def generate_synthetic_pair(out_dir: str | Path, seed: int = 0, gap: float = 1.0,
                            num_train_ids: int = DEFAULT_TRAIN_IDS, num_test_ids: int = DEFAULT_TEST_IDS,
                            height: int = 128, width: int = 64, overwrite: bool = False,
                            progress: bool = True) -> dict[str, Path]:
    """Generate (or reuse) the two-domain synthetic dataset in ``out_dir/A`` and ``out_dir/B``.

    Parameters
    ----------
    out_dir : folder receiving ``A/`` and ``B/`` (Market-1501 layout plus ``synthetic.json``).
    seed : the output is byte-identical for equal parameters.
    gap : style gap between the domains, 0 (same style) .. 1 (default) .. 2 (harder); see
        :func:`domain_styles`.
    num_train_ids, num_test_ids : identities per domain in the train split and in query/gallery.
    height, width : image size in pixels.
    overwrite : regenerate existing folders (otherwise a folder generated with the same parameters and holding
        the image counts its ``synthetic.json`` records is reused, and any other folder is an error).
    progress : show a tqdm progress bar.

    Returns
    -------
    ``{"A": Path, "B": Path}``, the two domain folders (absolute).
    """
    spec = SyntheticSpec(seed=seed, gap=gap, num_train_ids=num_train_ids, num_test_ids=num_test_ids,
                         height=height, width=width)
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"synthetic data: out_dir {out} exists and is not a folder")
    styles = dict(zip("AB", domain_styles(spec.gap)))
    reuse = {d: _check_existing(out / d, spec, d, overwrite) for d in styles}   # check both first
    out.mkdir(parents=True, exist_ok=True)
    for d, style in styles.items():
        if reuse[d]:
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{d}.partial-", dir=out))
        try:
            counts = generate_domain(tmp, d, style, spec, progress=progress)
            meta = {"generator": "reid_uda_lib.data.synthetic", "domain": d, "spec": spec.to_dict(),
                    "style": style.to_dict(), "counts": counts}
            (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
            os.replace(tmp, out / d)       # atomic: a folder with synthetic.json is always complete
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return {d: out / d for d in styles}


# ----------------------------------------------------------------------------------------------
# Looking at it
# ----------------------------------------------------------------------------------------------

def contact_sheet(domain_dir: str | Path, n: int = 48, per_row: int = 8, split: str = "bounding_box_test",
                  scale: int = 1, pad: int = 2) -> Image.Image:
    """A grid of ``n`` images of one domain: each row is one identity, its images sorted by camera.

    Identities are spread evenly over the split's sorted ids; rows with fewer images stay blank.
    """
    folder = Path(domain_dir) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"contact_sheet: no folder {folder} (expected a Market-layout domain "
                                f"folder with '{split}/')")
    if n < 1 or per_row < 1 or scale < 1:
        raise ValueError(f"contact_sheet: n, per_row and scale must be >= 1, got {n}, {per_row}, {scale}")
    by_pid: dict[int, list[tuple[int, Path]]] = {}
    for p in sorted(folder.glob("*.jpg")):
        m = _NAME_RE.match(p.name)
        if m:
            by_pid.setdefault(int(m.group(1)), []).append((int(m.group(2)), p))
    if not by_pid:
        raise FileNotFoundError(f"contact_sheet: no Market-named .jpg images in {folder}")
    pids = sorted(by_pid)
    rows = min(len(pids), math.ceil(n / per_row))
    chosen = [pids[int(i)] for i in np.linspace(0, len(pids) - 1, rows).round()]
    with Image.open(by_pid[chosen[0]][0][1]) as im:
        w, h = im.size[0] * scale, im.size[1] * scale
    sheet = Image.new("RGB", (per_row * (w + pad) + pad, rows * (h + pad) + pad), (255, 255, 255))
    for r, pid in enumerate(chosen):
        items = sorted(by_pid[pid])                     # by camera, then name
        if len(items) > per_row:                       # keep every camera represented
            items = [items[int(i)] for i in np.linspace(0, len(items) - 1, per_row).round()]
        for c, (_, path) in enumerate(items):
            with Image.open(path) as im:
                tile = im.convert("RGB").resize((w, h), Image.NEAREST)
            sheet.paste(tile, (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    """``python -m reid_uda_lib.data.synthetic --out DIR [...]``; prints the two folders as JSON."""
    ap = argparse.ArgumentParser(prog="python -m reid_uda_lib.data.synthetic",
                                 description="Generate the synthetic two-domain (A, B) person re-ID dataset "
                                             "in Market-1501 layout.")
    ap.add_argument("--out", required=True, help="folder receiving A/ and B/")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gap", type=float, default=1.0, help="style gap: 0 same style, 1 default, 2 harder")
    ap.add_argument("--train-ids", type=int, default=DEFAULT_TRAIN_IDS, help="training identities per domain")
    ap.add_argument("--test-ids", type=int, default=DEFAULT_TEST_IDS, help="query/gallery identities per domain")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--overwrite", action="store_true", help="regenerate the folders even if they exist")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    try:
        out = generate_synthetic_pair(args.out, seed=args.seed, gap=args.gap, num_train_ids=args.train_ids,
                                      num_test_ids=args.test_ids, height=args.height, width=args.width,
                                      overwrite=args.overwrite, progress=not args.quiet)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({k: str(v) for k, v in out.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
