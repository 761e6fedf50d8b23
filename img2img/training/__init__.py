"""Training pieces for train.py (pix2pix and CycleGAN), one concept per module.

config.py       TrainConfig (one flag per field), presets pix2pix / cyclegan / huggan
recipes.py      one Recipe per family: networks, optimizers, pools, step, metrics, exports
trainer.py      the run: Trainer state, build / restore / save, the loop, DDP sync check
progress.py     where a run is (step / epoch / batch), fitted to a resized training set
runlock.py      one train.py per run folder (flock on RUN_DIR/train.lock)
interrupt.py    SIGTERM / SIGINT: stop after the step and save; a second signal aborts
loader.py       training and validation sets, the DataLoader
nets.py         generator / discriminator / Adam / linear-decay scheduler builders; HugGAN D
losses.py       vanilla / LSGAN adversarial losses, L1
steps.py        pix2pix_step, cyclegan_step: pure step functions returning losses
cut.py          CUT / FastCUT: cut_step, PatchNCE, the projection heads F
pool.py         the CycleGAN image pool, seeded and resumable
precision.py    fp32 / bf16 / fp16 + grad scaler
checkpoint.py   atomic resume checkpoints, RNG state capture
distributed.py  torchrun: process group, device, DDP, collectives, the agreed stop flag
metrics.py      validation: the metric table's cheap scores, cycle L1, FID/KID if cheap, image grids
monitor.py      tqdm, TensorBoard, metrics.jsonl
export.py       weights/<name>/ in the release format, whether it is current, push to the Hub
"""
