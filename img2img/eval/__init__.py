"""Evaluation: `img2img evaluate` (evaluate.py), the one metric table (metrics.py: names,
directions, needs; read by evaluate, the report and train.py), the metrics' arithmetic
(quality.py: L1, PSNR, SSIM; perceptual.py: FID, KID, LPIPS) and the HTML report (report.py)."""
