"""Write the app's example inputs and their licence record into this folder.

    python examples/make_examples.py     (needs scikit-image, from requirements-dev.txt)

Photos come from scikit-image's package data, public-domain and CC0 images only (each
function's docstring in skimage.data states its source and licence). Inputs that a domain
needs and no free photo provides are drawn here: a CMP-style facade label map, a
Cityscapes-style street label map, a Google-Maps-style street map, and an edge map computed
from a photo. Those drawings are ours, dedicated to the public domain (CC0), like this script.
Writes examples.json (file, model to pre-select, source, licence: the app reads it) and
LICENSES.md (the same record, for people). Deterministic: rerunning gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
CC0_OURS = "CC0 1.0 (drawn by examples/make_examples.py for this project)"

# The CMP Facade Database's 12 classes in the jet palette of the pix2pix `facades` set.
FACADE = {
    "background": (0, 0, 170), "facade": (0, 0, 255), "window": (0, 85, 255),
    "door": (0, 170, 255), "cornice": (0, 255, 255), "sill": (85, 255, 170),
    "balcony": (170, 255, 85), "blind": (255, 255, 0), "deco": (255, 170, 0),
    "molding": (255, 85, 0), "pillar": (255, 0, 0), "shop": (170, 0, 0),
}  # fmt: skip
# Cityscapes label colours (the `cityscapes` set of pix2pix / CycleGAN).
CITY = {
    "road": (128, 64, 128), "sidewalk": (244, 35, 232), "building": (70, 70, 70),
    "pole": (153, 153, 153), "sign": (220, 220, 0), "vegetation": (107, 142, 35),
    "sky": (70, 130, 180), "person": (220, 20, 60), "car": (0, 0, 142),
}  # fmt: skip


def skimage_file(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def facade_labels() -> Image.Image:
    """A four-storey facade: windows with sills and blinds, a cornice, a shop front, a door."""
    img = Image.new("RGB", (256, 256), FACADE["background"])
    d = ImageDraw.Draw(img)
    d.rectangle([16, 24, 239, 255], fill=FACADE["facade"])
    d.rectangle([10, 24, 245, 38], fill=FACADE["cornice"])
    for row in range(3):
        top = 56 + row * 50
        d.rectangle([16, top - 6, 239, top - 3], fill=FACADE["molding"])
        for col in range(4):
            left = 30 + col * 54
            d.rectangle([left, top, left + 26, top + 30], fill=FACADE["window"])
            d.rectangle([left - 2, top + 31, left + 28, top + 34], fill=FACADE["sill"])
            if (row + col) % 3 == 0:
                d.rectangle([left, top, left + 26, top + 12], fill=FACADE["blind"])
        if row == 1:
            d.rectangle([80, top + 36, 175, top + 42], fill=FACADE["balcony"])
    d.rectangle([16, 208, 239, 255], fill=FACADE["shop"])
    d.rectangle([112, 212, 142, 255], fill=FACADE["door"])
    for x in (16, 232):
        d.rectangle([x, 40, x + 7, 207], fill=FACADE["pillar"])
    d.rectangle([118, 44, 136, 50], fill=FACADE["deco"])
    return img


def street_labels() -> Image.Image:
    """A street scene as Cityscapes labels: sky, buildings, trees, road, pavement, a car."""
    img = Image.new("RGB", (512, 256), CITY["sky"])
    d = ImageDraw.Draw(img)
    d.polygon([(0, 40), (150, 90), (150, 150), (0, 170)], fill=CITY["building"])
    d.polygon([(512, 30), (360, 90), (360, 150), (512, 175)], fill=CITY["building"])
    d.ellipse([150, 80, 230, 150], fill=CITY["vegetation"])
    d.ellipse([300, 85, 370, 150], fill=CITY["vegetation"])
    d.rectangle([150, 120, 360, 150], fill=CITY["building"])
    d.polygon([(0, 170), (150, 150), (360, 150), (512, 175), (512, 256), (0, 256)],
              fill=CITY["road"])  # fmt: skip
    d.polygon([(0, 170), (150, 150), (120, 156), (0, 200)], fill=CITY["sidewalk"])
    d.polygon([(512, 175), (360, 150), (390, 157), (512, 210)], fill=CITY["sidewalk"])
    d.rectangle([92, 110, 96, 185], fill=CITY["pole"])
    d.rectangle([84, 100, 104, 112], fill=CITY["sign"])
    d.rounded_rectangle([230, 160, 330, 205], radius=10, fill=CITY["car"])
    d.rectangle([420, 140, 432, 200], fill=CITY["person"])
    return img


def street_map() -> Image.Image:
    """A city map in web-map colours: blocks, streets, an avenue, a park and a river."""
    img = Image.new("RGB", (256, 256), (236, 232, 224))
    d = ImageDraw.Draw(img)
    d.polygon([(0, 190), (256, 150), (256, 185), (0, 225)], fill=(170, 211, 223))
    d.rectangle([150, 20, 230, 100], fill=(200, 230, 180))
    for x in range(0, 256, 48):
        d.line([(x + 10, 0), (x - 6, 256)], fill=(255, 255, 255), width=6)
    for y in (40, 110):
        d.line([(0, y), (256, y - 12)], fill=(255, 255, 255), width=6)
    d.line([(0, 150), (256, 120)], fill=(252, 214, 164), width=10)
    return img.filter(ImageFilter.SMOOTH)


def edge_map(photo: Image.Image) -> Image.Image:
    """Dark edges on white, as the edges2shoes sketches: Canny on the photo's grey levels."""
    from skimage.feature import canny

    grey = np.asarray(photo.convert("L"), dtype=np.float64) / 255
    edges = canny(grey, sigma=2.0)
    lines = Image.fromarray(np.where(edges, 0, 255).astype(np.uint8))
    return lines.filter(ImageFilter.MinFilter(3)).convert("RGB")


def horse_meadow() -> Image.Image:
    """skimage's horse silhouette, brown, on a meadow (skimage's grass texture) under a sky."""
    shape = Image.open(skimage_file("horse.png")).convert("L")  # black horse on white
    w, h = shape.size
    sky = np.linspace([120, 170, 230], [200, 225, 245], h)[:, None, :].repeat(w, 1)
    grass = np.asarray(Image.open(skimage_file("grass.png")).convert("L").resize((w, h)))
    meadow = grass[..., None] / 255 * np.array([90, 150, 60]) + np.array([40, 60, 20])
    horizon = int(h * 0.55)
    scene = np.concatenate([sky[:horizon], meadow[horizon:]]).astype(np.uint8)
    img = Image.fromarray(scene)
    horse = Image.new("RGB", (w, h), (110, 70, 40))
    img.paste(horse, (0, 0), Image.eval(shape, lambda v: 255 - v))
    return img


def fit(img: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)


def main() -> None:
    coffee = Image.open(skimage_file("coffee.png")).convert("RGB")
    rows = [
        ("night-launch-pad.jpg", "pix2pix/night2day",
         fit(Image.open(skimage_file("rocket.jpg")).convert("RGB"), 512),
         "scikit-image data rocket.jpg: DSCOVR launch on Falcon 9 at night, SpaceX",
         "public domain (released by SpaceX)"),
        ("day-cameraman.jpg", "pix2pix/day2night",
         fit(Image.open(skimage_file("camera.png")).convert("RGB"), 384),
         "scikit-image data camera.png, photographer Lav Varshney", "CC0 1.0"),
        ("facade-labels.png", "pix2pix/facades_label2photo", facade_labels(),
         "drawn from rectangles in the CMP Facade label colours", CC0_OURS),
        ("street-labels.png", "cyclegan/cityscapes_label2photo", street_labels(),
         "drawn in the Cityscapes label colours", CC0_OURS),
        ("city-map.png", "pix2pix/map2sat", street_map(),
         "drawn in web-map colours (no map data used)", CC0_OURS),
        ("cup-edges.png", "pix2pix/edges2shoes", edge_map(fit(coffee, 256).crop((0, 0, 256, 171))),
         "Canny edges of scikit-image data coffee.png (photographer Rachel Michetti)",
         "CC0 1.0 (derived from a CC0 photo)"),
        ("horse-meadow.jpg", "cyclegan/horse2zebra", horse_meadow(),
         "scikit-image data horse.png (openclipart, Andreas Preuss) on grass.png (DeviantArt, "
         "linolafett), composed here", "CC0 1.0 (both sources CC0)"),
        ("horse-meadow.jpg", "cyclegan/summer2winter_yosemite", None, "", ""),
        ("coffee.jpg", "cyclegan/style_vangogh", fit(coffee, 384),
         "scikit-image data coffee.png, photographer Rachel Michetti", "CC0 1.0"),
        ("cat.jpg", "cyclegan/style_monet",
         fit(Image.open(skimage_file("chelsea.png")).convert("RGB"), 384),
         "scikit-image data chelsea.png, photographer Stefan van der Walt", "CC0 1.0"),
    ]  # fmt: skip
    record, licences = [], {}
    for name, model, img, source, licence in rows:
        if img is not None:
            options = {"quality": 85, "optimize": True} if name.endswith(".jpg") else {}
            img.save(HERE / name, **options)
            licences[name] = (source, licence)
        source, licence = licences[name]
        record.append({"file": name, "model": model, "source": source, "license": licence})
    (HERE / "examples.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    lines = ["# Example inputs: sources and licences", "",
             "Written by `python examples/make_examples.py`; `examples.json` is the same "
             "record, read by the app (the model each example pre-selects).", "",
             "| file | source | licence |", "|---|---|---|"]  # fmt: skip
    lines += [f"| `{n}` | {s} | {lic} |" for n, (s, lic) in licences.items()]
    (HERE / "LICENSES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
