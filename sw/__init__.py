"""Nybble's numerics core: formats, codecs, quantizers and the golden GEMM (numpy only)."""
from .formats import Format, FormatError, get_format, format_names, codebook
from .codec import encode, decode, pack4, unpack4, ROUNDING_MODES
from .quantize import QuantizedTensor, Scheme, quantize, get_scheme, scheme_names, from_bytes
from .golden import (gemm, gemm_codes, gemm_block_acc, gemm_block_codes, min_acc_bits,
                     scheme_acc_bits,
                     product_format, element_ints,
                     CODEBOOK_FRAC_BITS, OVERFLOW_MODES)
