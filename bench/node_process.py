"""The node plugin process the memory benchmark measures.

It runs exactly what ``oxide-csi serve --mode node [--metrics-address ...]`` runs (the same
``build_plugin`` and server, and the same start as ``oxide_csi.launch``: no ``ssl`` module
without a metrics endpoint), with one dev-mode setting the command line does not offer: the
directory of the loop devices that stand in for this node's disks (``oxide-csi dev`` passes it
the same way). It imports nothing from the benchmark, so its memory is the plugin's alone.

Run by ``bench.node_memory``; by hand: ``python -m bench.node_process --endpoint unix:///x.sock
--node-id ID --kubelet-dir DIR --loop-device-dir DIR [--metrics-address HOST:PORT]``.
"""

from __future__ import annotations

import argparse

from oxide_csi.ssl_gate import block_ssl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--kubelet-dir", required=True)
    parser.add_argument("--loop-device-dir", required=True)
    parser.add_argument("--metrics-address", default="")
    args = parser.parse_args()
    if not args.metrics_address:
        block_ssl()  # before asyncio is imported, as the console script does in node mode
    import asyncio
    import dataclasses
    from pathlib import Path

    from oxide_csi.app import build_plugin
    from oxide_csi.config import build_serve_config
    from oxide_csi.logsetup import configure_logging
    from oxide_csi.server.grpc_server import serve_until_signalled

    configure_logging("warning", "json")
    config = build_serve_config(
        {
            "mode": "node",
            "endpoint": args.endpoint,
            "node_id": args.node_id,
            "kubelet_dir": args.kubelet_dir,
            "metrics_address": args.metrics_address,
        },
        {},
    )
    assert config.node is not None
    node = dataclasses.replace(config.node, loop_device_dir=Path(args.loop_device_dir))
    config = dataclasses.replace(config, node=node)

    async def run() -> None:
        plugin = await build_plugin(config)
        await serve_until_signalled(plugin.spec, on_shutdown=plugin.aclose)

    asyncio.run(run())


if __name__ == "__main__":
    main()
