"""Training pieces for train.py (pix2pix and CycleGAN), one concept per module.

config.py       TrainConfig (one flag per field), presets pix2pix / cyclegan / huggan
nets.py         networks, Adam optimizers, linear-decay schedulers; HugGAN discriminator
losses.py       vanilla / LSGAN adversarial losses, L1
steps.py        pix2pix_step, cyclegan_step: pure step functions returning losses
pool.py         the CycleGAN image pool, seeded and resumable
precision.py    fp32 / bf16 / fp16 + grad scaler
checkpoint.py   atomic resume checkpoints, RNG state capture
distributed.py  torchrun: process group, device, DDP, collectives
metrics.py      validation: L1, PSNR, SSIM, cycle L1, image grids
monitor.py      tqdm, TensorBoard, metrics.jsonl
export.py       weights/<name>/ in the release format, push to the Hub
"""
