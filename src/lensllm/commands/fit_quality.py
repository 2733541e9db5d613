"""``lensllm fit-quality``: every law fitted to each model's whole curve, in-sample log RMSD."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

EPILOG = """\
examples:
  lensllm fit-quality                                   # both bundled tables, vs published
  lensllm fit-quality --table gigaword --out reports/fit_quality   # plus scatter plots
  lensllm fit-quality --table runs.csv --ntk a.ntk.json b.ntk.json   # with the LensLLM law

Each law is fitted to every size column of a model (200 ... D*, not column 0) in log space;
RMSD = sqrt(mean((log L_fit(D) - log L(D))^2)) at those same points (in sample), the
protocol of the published study. Laws: power (A D^-alpha + E), rectified
(B / (D_l + D^beta) + E), paper_power (the published code's variant
(1 / (B D^beta) + |E|)^alpha, beta > 0), lens (B / (F(Theta, t) + D^beta) + E, with --ntk).
On the bundled tables the published RMSDs of rectified and paper_power are shown alongside.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit-quality", help="in-sample fit of every law to each model's whole curve",
        description="Fit every scaling law to each model's whole loss curve and report the "
                    "in-sample log RMSD per model and law, a summary per law, and (with --out) "
                    "a law-vs-law scatter plot.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", action="extend", metavar="NAME_OR_PATH",
                   help="bundled table (flan, gigaword) or a CSV path; repeatable "
                        "(default: both bundled tables)")
    p.add_argument("--laws", metavar="L1,L2",
                   help="comma-separated laws (default: all; lens only with --ntk)")
    p.add_argument("--ntk", nargs="+", type=Path, metavar="FILE",
                   help="NTK feature files from `lensllm ntk --out`, one per model (matched "
                        "by their model id); adds the lens law")
    p.add_argument("--json", action="store_true",
                   help="print JSON: per-model records and the summary")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="also write scatter plots, fit_quality.json and summary.md into DIR")
    p.set_defaults(handler=run)


def _load_spectra(paths: list[Path]) -> dict[str, object]:
    from lensllm.exceptions import CLIUsageError
    from lensllm.ntk.spectrum import NTKSpectrum

    spectra = {}
    for path in paths:
        spec = NTKSpectrum.load(path)
        model = spec.meta.get("model_id")
        if not model:
            raise CLIUsageError(f"--ntk {path}: the file names no model (meta.model_id)")
        spectra[str(model)] = spec
    return spectra


def run(args: argparse.Namespace) -> int:
    from lensllm.bench import BUNDLED_TABLES, load_table
    from lensllm.bench.fit_quality import FIT_QUALITY_LAWS, fit_quality
    from lensllm.bench.published import load_published_fit_rmsd
    from lensllm.commands._common import parse_name_list, print_json
    from lensllm.report.fit_quality_report import format_fit_quality

    from lensllm.outputs import check_output_dir

    laws = (parse_name_list(args.laws, "--laws", list(FIT_QUALITY_LAWS))
            if args.laws else None)
    if args.out is not None:
        from lensllm.commands._common import table_paths
        from lensllm.outputs import check_apart

        check_output_dir(args.out, "--out")
        check_apart({"--out": args.out}, {**table_paths(args.table),
                                          **{f"--ntk {p}": p for p in args.ntk or []}})
    names = args.table or list(BUNDLED_TABLES)
    tables = [load_table(t) for t in names]
    spectra = _load_spectra(args.ntk) if args.ntk else None
    published = load_published_fit_rmsd()
    results = [fit_quality(t, laws=laws, spectra=spectra,
                           published=published if n in BUNDLED_TABLES else None)
               for n, t in zip(names, tables)]
    payload = {"models": [r for fq in results for r in fq.records()],
               "summary": [s for fq in results for s in fq.summary()],
               "notes": {fq.dataset: fq.notes for fq in results if fq.notes}}
    if args.json:
        print_json(payload)
    else:
        print(format_fit_quality(results))
    if args.out is not None:
        from lensllm.report.fit_quality_report import write_fit_quality_report

        from lensllm.outputs import json_text, make_dir, write_text

        sys.stderr.write(f"writing plots to {args.out} ...\n")
        make_dir(args.out, "--out")
        write_text(args.out / "fit_quality.json", json_text(payload), "fit_quality.json")
        sys.stderr.write(f"report: {write_fit_quality_report(results, args.out)}\n")
    return 0
