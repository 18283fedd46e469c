from __future__ import annotations


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
