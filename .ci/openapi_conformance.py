#!/usr/bin/env python3
"""Hold a simulator traffic log against the Oxide OpenAPI document (run by CI).

The rules and why they are stricter than the document are in the ``conformance`` package
beside this script; this file is only its command line.

Usage: openapi_conformance.py LOG --openapi PATH [--releases DIR] [--require-endpoints];
exit 1 on failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# .ci is no installed package: find the ``conformance`` package beside this file whether the
# file runs as a script (its folder is then on sys.path already) or is imported by a test.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from conformance import Spec, check_log, load_release_specs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("log", type=Path, help="JSONL traffic log written by the simulator")
    parser.add_argument("--openapi", type=Path, required=True, help="Oxide OpenAPI document")
    parser.add_argument(
        "--releases",
        type=Path,
        help="folder of older releases' documents (nexus-vN.json), for traffic of a simulator "
        "playing a release before v18",
    )
    parser.add_argument(
        "--require-endpoints",
        action="store_true",
        help="fail unless the plugin's client got a 2xx answer for every "
        "operation the plugin needs",
    )
    args = parser.parse_args(argv)
    try:
        spec = Spec.load(args.openapi)
        older = load_release_specs(args.releases) if args.releases else {}
        text = args.log.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = check_log(spec, text.splitlines(), args.require_endpoints, older)
    print("\n".join(report.lines))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
