"""A protocol-faithful fake AI provider (Anthropic Messages, OpenAI Chat and Responses).

Import it through scripts/fake_provider.py (scripts/ is not a package). See that file for the
public surface and the trigger words.
"""

from .cli import main
from .httpserver import ReceivedRequest
from .routes import expected_usage
from .scenario import (
    BASE_TEXT,
    DONE_TEXT,
    RUN_COMMAND,
    SIGNATURE,
    SUMMARY_TEXT,
    THINKING_TEXT,
    answer_text,
    split_text,
)
from .server import FakeProvider

__all__ = [
    "BASE_TEXT",
    "DONE_TEXT",
    "RUN_COMMAND",
    "SIGNATURE",
    "SUMMARY_TEXT",
    "THINKING_TEXT",
    "FakeProvider",
    "ReceivedRequest",
    "answer_text",
    "expected_usage",
    "main",
    "split_text",
]
