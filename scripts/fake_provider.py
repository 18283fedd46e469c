#!/usr/bin/env python3
"""A protocol-faithful fake AI provider: Anthropic Messages + OpenAI Chat/Responses on loopback.

Entry point and import surface of the `scripts/fakeprovider/` package (scripts/ is not a
package, so this file loads it by path; tests import this file with importlib).

    python scripts/fake_provider.py --port 0 [--host 127.0.0.1] [--delay S] [--events N]
                                    [--bigevent-mb MB] [--port-file PATH] [--no-record]

prints ``listening on 127.0.0.1:PORT``; SIGINT/SIGTERM stop it cleanly.

In-process::

    fp = FakeProvider(delay=0.0, events=None).start_in_thread()   # or `with FakeProvider() as fp`
    ... fp.port, fp.base_url, fp.requests[-1].headers, fp.clear() ...
    fp.stop_in_thread()                                            # or await fp.start()/stop()

Routes: Anthropic ``POST /v1/messages[?beta=true]``, ``POST /v1/messages/count_tokens``,
``GET /v1/models[/{id}]`` (need ``x-api-key`` or ``authorization``); OpenAI
``POST /v1/chat/completions``, ``POST /v1/responses``, ``GET /v1/responses/{id}``,
``GET /v1/models[/{id}]`` (need ``Authorization: Bearer``); ``HEAD`` on anything -> 200;
anything else -> 404 in the API's error shape. ``GET /_fake/requests`` and
``POST /_fake/clear`` expose the recorded requests to a parent process.

Triggers (upper-case words in the last user message text): TOOL, TOOL2 (two parallel calls),
THINK, ERR429, ERR500, ERRMID, SLOW (2 s before headers), HANG, RESET, RESETMID, GZIP,
BIGEVENT. TOOL calls the first tool of the request with ``{"location": "Paris"}``; for real
agent CLIs, ``TOOLRUN`` calls the first shell tool offered (Claude Code ``Bash``
``{"command": "echo hi-from-fake", ...}``, Codex ``exec_command`` ``{"cmd": ...}`` or ``shell``)
and ``TOOLREAD:<path>`` calls ``Read`` with ``{"file_path": "<path>"}``; both fall back to TOOL
when the request has no such tool. After a tool result the answer is "Done.".
Broken upstreams (for hardening tests): BADSSE (malformed SSE lines before the events),
NODONE (the stream's last event -- message_stop, ``[DONE]``, response.completed -- left out),
BADUTF8 (an event with bytes that are not UTF-8), TRUNCJSON (a blocking answer cut in half,
framed by its short Content-Length), WRONGCT (the answer declared ``text/html``, a stream
declared ``text/plain`` and sent whole), REDIRECT (307 to ``x-fake-location``, default the same
path on this server with ``?redirected=1``), DRIP (the answer one byte per write,
``x-fake-delay`` apart, default 2 ms).
Knobs per request: ``x-fake-delay``, ``x-fake-events``, ``x-fake-bigevent-mb``,
``x-fake-location``.
Usage numbers: see ``expected_usage`` and the formula in fakeprovider/scenario.py.
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PACKAGE = "fakeprovider"


def _load_package() -> ModuleType:
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None:
        return loaded
    package_dir = Path(__file__).resolve().parent / PACKAGE
    spec = importlib.util.spec_from_file_location(
        PACKAGE, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {package_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


_package = _load_package()

FakeProvider = _package.FakeProvider
ReceivedRequest = _package.ReceivedRequest
expected_usage = _package.expected_usage
answer_text = _package.answer_text
split_text = _package.split_text
main = _package.main
BASE_TEXT: str = _package.BASE_TEXT
DONE_TEXT: str = _package.DONE_TEXT
RUN_COMMAND: str = _package.RUN_COMMAND
THINKING_TEXT: str = _package.THINKING_TEXT
SUMMARY_TEXT: str = _package.SUMMARY_TEXT
SIGNATURE: str = _package.SIGNATURE

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

if __name__ == "__main__":
    sys.exit(main())
