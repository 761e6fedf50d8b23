"""Publishing generators in our release format to the Hugging Face Hub: push and mirror.

`push` uploads a folder (config.json + model.safetensors + README.md) after proving that it
loads, with the exports found beside them (model.onnx, openvino_model.xml + .bin: made by
`img2img export` or by push's `exports`), each proven to come from these weights; `mirror`
fetches a catalog model from its original source, converts it to our format and pushes it,
with a model card that names the original as its source. Both go through
`huggingface_hub.HfApi`, so HF_TOKEN and HF_ENDPOINT work as usual.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from .. import export
from ..errors import ConfigError, PushError
from .catalog import ModelEntry, default_repo_name, get_entry
from .hub import load_model
from .release import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, model_card, save_pretrained
from .weights import load_generator


def catalog_card(config: dict, entry: ModelEntry) -> str:
    """The model card of a mirrored catalog model (license and provenance from the catalog)."""
    hub_source = next((s for s in entry.sources if s.type == "hub"), None)
    return model_card(
        config,
        title=entry.label,
        family=entry.family,
        license_id=entry.license_id,
        license_text=entry.license,
        dataset=entry.dataset,
        base_model=hub_source.repo_id if hub_source else None,
        train=entry.train,
        notes=(f"expects: {entry.expects}", f"converted from: {entry.id}"),
    )


def export_files(directory: Path, module: nn.Module) -> list[str]:
    """The exports in `directory` (release names, export.FILE_NAMES), each checked to come
    from `module`'s weights (its weights_sha256); PushError for a stale or partial one."""
    names = []
    for fmt, name in export.FILE_NAMES.items():
        path = directory / name
        if not path.is_file():
            continue
        files = [name, path.with_suffix(".bin").name] if fmt == "openvino" else [name]
        missing = [f for f in files if not (directory / f).is_file()]
        if missing:
            raise PushError(f"{path} has no {missing[0]} beside it: export it again")
        if export.read_metadata(path).get("weights_sha256") != export.fingerprint(module):
            raise PushError(
                f"{path} was not exported from {directory / WEIGHTS_NAME}: export it again "
                f"(img2img export {directory} --format {fmt} -o {directory} --overwrite) or "
                "remove it"
            )
        names += files
    return names


def push(
    directory: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    message: str = "Upload img2img generator",
    exports: Sequence[str] = (),
) -> str:
    """Upload a folder in our format, with its exports (`exports`: formats of export.FORMATS
    to write into the folder first); returns the commit URL."""
    from huggingface_hub import HfApi

    directory = Path(directory)
    module = load_generator(directory)  # refuse to publish something that does not load
    for fmt in exports:
        export.export(module, fmt, directory)
    exported = export_files(directory, module)
    if not (directory / CARD_NAME).is_file():
        card = model_card(module.config, title=repo_id, family="img2img")
        (directory / CARD_NAME).write_text(card)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(
        folder_path=directory,
        repo_id=repo_id,
        commit_message=message,
        allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, *exported],
    )
    return str(getattr(info, "commit_url", info))


def default_mirror_repo(model_id: str) -> str:
    """IMG2IMG_HUB_NAMESPACE/img2img-<family>-<name>, where the catalog's override finds it."""
    namespace = os.environ.get("IMG2IMG_HUB_NAMESPACE", "").strip()
    if not namespace:
        raise ConfigError("pass --repo-id NS/NAME or set IMG2IMG_HUB_NAMESPACE")
    return f"{namespace}/{default_repo_name(get_entry(model_id).id)}"


def mirror(model_id: str, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Fetch a catalog model from its original source, convert it to our format, publish it."""
    entry = get_entry(model_id)
    module = load_model(entry.id)
    with tempfile.TemporaryDirectory() as tmp:
        card = catalog_card(module.config, entry)
        save_pretrained(module, tmp, card=card, metadata={"source_id": model_id})
        return push(
            tmp,
            repo_id,
            private=private,
            token=token,
            message=f"Mirror of {model_id} in img2img format",
        )
