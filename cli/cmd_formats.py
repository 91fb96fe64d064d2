"""``nybble formats``: every format's spec block (bits, bias, every value)."""

from nybble.sw import get_format, format_names

from .common import emit


def register(sub):
    p = sub.add_parser("formats", help="list every number format with its values")
    p.add_argument("names", nargs="*", help="formats to show (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--markdown", action="store_true",
                   help="print the README's 'Number formats' table")
    p.set_defaults(func=run)


def markdown_table():
    """The README's format table, generated from the registry (one source of truth)."""
    rows = ["| format | aliases | bits | kind | range | values (codes 0..) |",
            "|---|---|---|---|---|---|"]
    for name in format_names() + ["e3m0_b4"]:
        f = get_format(name)
        vals = ("" if f.n_codes > 16 else
                " ".join(f"{v:g}" for v in f.values))
        rows.append(f"| `{f.name}` | {', '.join(f'`{a}`' for a in f.aliases)} | {f.bits} | "
                    f"{f.kind} | {f.min_value:g} .. {f.max_value:g} | {vals} |")
    return "\n".join(rows)


def format_block(fmt):
    """A human-readable spec block for one format."""
    s = fmt.spec()
    head = f"{fmt.name}" + (f" (= {', '.join(fmt.aliases)})" if fmt.aliases else "")
    lines = [head, f"  {fmt.description}",
             f"  bits {fmt.bits}, kind {fmt.kind}, signed {fmt.signed}"
             + (f", exp {fmt.exp_bits} man {fmt.man_bits} bias {fmt.bias}" if fmt.exp_bits else "")
             + (f", radix {fmt.radix}" if fmt.radix != 2 else ""),
             f"  range {fmt.min_value:g} .. {fmt.max_value:g}, smallest positive "
             f"{fmt.min_positive:g}, fixed-point grid 2^-{fmt.frac_bits}"
             if fmt.frac_bits is not None else
             f"  range {fmt.min_value:g} .. {fmt.max_value:g} (not dyadic)"]
    if fmt.nan_codes:
        lines.append(f"  NaN codes {', '.join(hex(c) for c in fmt.nan_codes[:4])}"
                     + (" ..." if len(fmt.nan_codes) > 4 else ""))
    if "values" in s and fmt.n_codes <= 64:
        vals = ", ".join(f"{c:#x}:{v if isinstance(v, str) else ('nan' if v is None else f'{v:g}')}"
                         for c, v in enumerate(s["values"]))
        lines.append(f"  values {vals}")
    return "\n".join(lines)


def run(args):
    if args.markdown:
        print(markdown_table())
        return 0
    names = args.names or format_names() + ["e3m0_b4"]
    fmts = [get_format(n) for n in names]
    emit(args, [f.spec() for f in fmts], "\n\n".join(format_block(f) for f in fmts))
