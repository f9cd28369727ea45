"""Command-line clients of a running plugin: ``oxide-csi call`` and ``oxide-csi demo``.

Why a package of its own: these are CSI *clients*, not part of the plugin. They talk to a
plugin's socket like the kubelet or the external sidecars would, so nothing in the server,
servicers or domain layers imports them. They are the one user of the generated stubs
(:mod:`oxide_csi.csi_v1`) outside the servicers, the server and the tests, and a legitimate one:
a client needs the same messages the server speaks, and there is no CSI command-line client in
Debian or on PyPI to lean on instead.
"""
