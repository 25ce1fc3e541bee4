"""`ServingError`: a request that cannot be answered, with its gRPC code and HTTP status."""

from __future__ import annotations

import grpc

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}


class ServingError(Exception):
    """A request that cannot be answered; carries the gRPC code (and so the HTTP status).

    Args:
        message: What is wrong with the request, as the client will read it.
        code: The gRPC status code. Defaults to `grpc.StatusCode.INVALID_ARGUMENT` (HTTP 400).
    """

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers with for `code` (500 if unmapped)."""
        return _HTTP_STATUS.get(self.code, 500)


def not_found(message: str) -> ServingError:
    """A `ServingError` with `NOT_FOUND` (HTTP 404): an unknown model or version."""
    return ServingError(message, grpc.StatusCode.NOT_FOUND)
