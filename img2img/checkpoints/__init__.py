"""Checkpoints: from a model id or a file to a strict-loaded generator, and back out to the Hub.

catalog.py   the catalog of pretrained generators (catalog.json) and deployment overrides
download.py  resumable, verified downloads and the cache folder
network.py   is a host reachable (fast offline answers)
hub.py       catalog resolution: local weights, the Hub, original URLs; availability
weights.py   read a checkpoint file (safetensors / weights-only torch.load) and load it
convert.py   foreign layouts (junyanz, HugGAN) cleaned to ours, family detection
bundle.py    files holding several networks (a whole CycleGAN, training checkpoints)
publish.py   our release format pushed to the Hub
"""
