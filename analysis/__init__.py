"""Numerics analysis above the golden model: stability of matmul chains, rate-distortion, GPTQ,
format search, the digits demo. Needs scipy and scikit-learn; nybble.sw stays numpy-only."""
