"""PyTorch peers of the attnbench kernels, run at a sweep's points (peers/README.md)."""
