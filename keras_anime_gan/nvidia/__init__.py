"""Import of NVIDIA's StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`), read without running their code."""
