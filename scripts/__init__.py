"""Development scripts, run from the checkout: `python -m scripts.screenshot`, `python -m scripts.gui_bench`,
`python -m scripts.gpu_drive`. They drive the real window; they are not part of the installed package."""
