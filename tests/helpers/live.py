"""The Live tab in Debian's chromium with a fake camera: a generated YUV4MPEG2 clip that
Chromium plays as the webcam (--use-file-for-fake-video-capture), and the steps a person
takes (open the tab, pick a model, allow the camera, Record, read the status, Stop).
Shared by tests/test_browser_live.py and bench/bench_live.py."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.browser import CAMERA_ARGS

STATUS = re.compile(
    r"([\d.]+) frames/s · model (\d+) ms/frame · (\d+) dropped · (\d+) translated of "
    r"(\d+) sent"
)


def camera_frames(frames: int, size: tuple[int, int]) -> list[Image.Image]:
    """What the fake camera shows: colour bars sliding sideways, a square moving down."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(frames):
        rgb = np.stack([(xx * 3 + i * 8) % 256, yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
        top = i * 4 % max(h - h // 4, 1)
        rgb[top : top + h // 4, w // 3 : w // 3 + w // 4] = (250, 250, 250)
        out.append(Image.fromarray(rgb.astype(np.uint8)))
    return out


def write_y4m(path: Path, frames: int = 60, size: tuple[int, int] = (320, 240), fps: int = 30):
    """A YUV4MPEG2 clip of camera_frames (4:2:0, full range), which Chromium loops as its
    fake camera. Sides must be even."""
    w, h = size
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for img in camera_frames(frames, size):
            ycc = np.asarray(img.convert("YCbCr"))  # JPEG's full-range BT.601
            f.write(b"FRAME\n")
            f.write(ycc[..., 0].tobytes())
            for plane in (1, 2):  # chroma averaged over 2x2 blocks
                c = ycc[..., plane].astype(np.uint16).reshape(h // 2, 2, w // 2, 2)
                f.write((c.sum(axis=(1, 3)) // 4).astype(np.uint8).tobytes())
    return path


def launch(playwright, chromium: str, y4m: Path):
    return playwright.chromium.launch(
        executable_path=chromium,
        headless=True,
        args=[*CAMERA_ARGS, f"--use-file-for-fake-video-capture={y4m}"],
    )


def open_live(page, url: str, model_label: str | None = None) -> None:
    """The Live tab open, `model_label` picked, the camera on and its frames flowing."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Live").click()
    if model_label:
        pick(page, model_label)
    page.locator("#live-cam").get_by_text("Click to Access Webcam").click()
    page.wait_for_function(
        """() => { const v = document.querySelector('#live-cam video');
                   return v && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.2; }"""
    )


def pick(page, label: str) -> None:
    """`label` picked in the Live tab's model picker (again if the list was redrawn under
    the click: the page refreshes the pickers' marks once it has loaded)."""
    for _ in range(3):
        page.locator("#live-model input").click()
        page.locator("ul[role=listbox] li", has_text=label).first.click()
        time.sleep(0.5)
        if label in page.locator("#live-model input").input_value():
            return
    raise AssertionError(
        f"{label} could not be picked: {page.locator('#live-model input').input_value()}"
    )


def record(page) -> None:
    """Start (or stop) the stream: the camera's Record / Stop button."""
    page.locator("#live-cam .button-wrap button").first.click()


def status(page) -> dict | None:
    """The figures the status line shows, or None before the first frame."""
    found = STATUS.search(page.locator("#live-status").inner_text())
    if not found:
        return None
    fps, ms, dropped, frames, sent = found.groups()
    figures = {"fps": float(fps), "model_ms": int(ms), "dropped": int(dropped)}
    return figures | {"frames": int(frames), "sent": int(sent)}


def wait_frames(page, frames: int, timeout_s: float = 120) -> dict:
    """The status once at least `frames` frames were translated."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        seen = status(page)
        if seen and seen["frames"] >= frames:
            return seen
        time.sleep(0.2)
    raise AssertionError(
        f"fewer than {frames} frames in {timeout_s}s: {page.locator('#live-status').inner_text()}"
    )


def output_src(page) -> str:
    """The src of the shown result (a data URL), '' when there is none."""
    return page.evaluate("() => document.querySelector('#live-out img')?.src || ''")
