"""Training data: the public pix2pix / CycleGAN datasets by name, local folders, safe extraction.

Two layouts are recognised, in a downloaded archive or a local folder:

    aligned    train/ (+ val/, test/): each image is A and B side by side (A | B)
    unaligned  trainA/ + trainB/ (+ testA/ + testB/): two unpaired image folders

pix2pix needs aligned data. CycleGAN takes either; an aligned set is then used unpaired
(its left halves are domain A, its right halves domain B, drawn independently).

    remote.py   the public sets by name: URL, resumable download, unpacked once
    archive.py  safe extraction (plain files and folders only, bounded size and count)
    layout.py   aligned / unaligned folder layouts, image listing
    samples.py  images and A|B halves, the classic augmentation, paired / unpaired datasets

Hugging Face datasets (optional `datasets` package, imported on first use):

    hf.py            a Hub id / save_to_disk folder / parquet / image folder -> a split's rows
    hf_write.py      rows -> resumable parquet shards under OUT, push_dataset to the Hub
    hf_translate.py  translate_dataset: a split's image column translated, columns kept
    hf_train.py      `train.py --dataset hf:NAME`: paired columns or unpaired splits
"""

from .archive import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, extract_archive
from .hf import STREAM_BYTES, Rows, Source, find_source, open_rows
from .hf_translate import DatasetTranslation, translate_dataset
from .hf_write import ShardWriter, push_dataset
from .layout import IMAGE_EXTENSIONS, Layout, detect_layout, list_images
from .remote import (
    BERKELEY_HOST,
    COMPLETE,
    DATASETS,
    RemoteDataset,
    data_root,
    dataset_url_base,
    fetch_dataset,
    find_dataset,
)
from .samples import (
    PREPROCESS,
    Augment,
    ImageRef,
    PairedDataset,
    UnpairedDataset,
    load_image,
    load_rgb,
    open_datasets,
    sample_rng,
)

__all__ = [
    "BERKELEY_HOST",
    "COMPLETE",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "MAX_ARCHIVE_BYTES",
    "MAX_ARCHIVE_MEMBERS",
    "PREPROCESS",
    "STREAM_BYTES",
    "Augment",
    "DatasetTranslation",
    "ImageRef",
    "Layout",
    "PairedDataset",
    "RemoteDataset",
    "Rows",
    "ShardWriter",
    "Source",
    "UnpairedDataset",
    "data_root",
    "dataset_url_base",
    "detect_layout",
    "extract_archive",
    "fetch_dataset",
    "find_dataset",
    "find_source",
    "list_images",
    "load_image",
    "load_rgb",
    "open_datasets",
    "open_rows",
    "push_dataset",
    "sample_rng",
    "translate_dataset",
]
