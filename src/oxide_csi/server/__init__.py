"""The gRPC server: listening, the cross-cutting interceptor, health, and request redaction."""
