"""Window and row-wise quant kernels: pure numba steps over Arrow arrays, in one registry."""
