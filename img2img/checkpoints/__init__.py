"""Checkpoints: from a model id or a file to a strict-loaded generator, and back out to the Hub.

catalog.py   the catalog of pretrained generators (catalog.json) and deployment overrides
download.py  resumable, verified downloads and the cache folder
network.py   is a host reachable (fast offline answers)
hub.py       catalog resolution: local weights, the Hub, original URLs; availability
weights.py   a checkpoint file in any family -> a strict-loaded generator: read -> clean
             (unpack a whole CycleGAN, key hygiene) -> detect the family -> build
release.py   our release format written: config.json + model.safetensors + model card
publish.py   our release format pushed to the Hub
"""
