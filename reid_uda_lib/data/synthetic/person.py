"""Identities of the synthetic generator (:mod:`reid_uda_lib.data.synthetic`): :class:`Person` (fixed body
proportions, clothes, hair, accessories), :func:`sample_person`, and :func:`draw_person`, which paints one view
of a person onto a canvas through a :class:`BodyFrame`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .style import _LOWER_PRIOR, _PALETTE_RGB, HAIR, PATTERNS, SHOES, SKIN, VIEWS, DomainStyle

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
