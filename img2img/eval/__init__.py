"""Evaluation: `img2img evaluate` (evaluate.py), its metrics (quality.py: L1, PSNR, SSIM;
perceptual.py: FID, KID, LPIPS) and the HTML report (report.py)."""
