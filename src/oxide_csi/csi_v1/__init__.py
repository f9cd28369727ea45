"""Generated protobuf and gRPC stubs for the CSI specification v1.12.0 (package ``csi.v1``).

Everything here except this file is produced by ``scripts/gen_stubs.py`` from
``proto/csi.proto``; do not edit the generated modules by hand. Import them as
``from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc``. Only the servicers, the server and the
tests should need them.
"""
