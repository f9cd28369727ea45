"""The ``oxide-csi`` console script: keep OpenSSL out of a node plugin, then run the CLI.

Why a module apart from ``oxide_csi.cli``: the decision (``oxide_csi.ssl_gate``) must be taken
before the CLI's own imports load asyncio and with it ``ssl``, so the CLI is imported only after
it, here, and the CLI itself imports only the gate.
"""

from __future__ import annotations

import os
import sys

from oxide_csi.ssl_gate import block_ssl, serves_node_only, speaks_tls


def main() -> int:
    argv = sys.argv[1:]
    if serves_node_only(argv, os.environ) and not speaks_tls(argv, os.environ):
        block_ssl()
    from oxide_csi.cli import main as cli_main

    return cli_main(argv)
