"""Controller-side domain: the rules for volumes, snapshots and attaching on Oxide.

Nothing here knows gRPC; the servicer in :mod:`oxide_csi.servicers.controller` translates.
"""
