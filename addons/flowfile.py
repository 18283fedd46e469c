"""Export API dumps as a mitmproxy flow file (`mitmweb -r FILE` opens it) or as HAR 1.2
(mitmproxy's own exporter, the one behind `save.har`).

Each dump becomes one finished HTTP flow whose id is the interception id. What the dump holds
is what the flow holds: masked headers, scrubbed and decoded bodies (framing headers such as
Content-Length are recomputed for the decoded body). The scheme is inferred from the Host
header (see `request_origin`). `EXPORTERS` is what `aibridge dumps export` uses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from mitmproxy import connection, http, io
from mitmproxy.addons.savehar import SaveHar

from gateway.cli.dumps import DumpExporters
from gateway.dumps import DumpEntry, HttpMessage, read_dump

_FRAMING = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def request_origin(req: HttpMessage) -> tuple[str, str, int]:
    """(scheme, host, port) of a dumped request, from its Host header (best effort: no port
    means https on 443, an explicit port other than 443 means plain http)."""
    host = req.header("host") or "localhost"
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        number = int(port)
        return ("https" if number == 443 else "http"), name.strip("[]"), number
    return "https", host.strip("[]"), 443


def _headers(msg: HttpMessage) -> http.Headers:
    fields = [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in msg.headers
        if k.lower() not in _FRAMING
    ]
    headers = http.Headers(fields)
    if msg.body or not msg.start_line.startswith(("GET ", "HEAD ")):
        headers["content-length"] = str(len(msg.body))
    return headers


def dump_to_flow(entry: DumpEntry, req: HttpMessage, resp: HttpMessage | None) -> http.HTTPFlow:
    ts = entry.started_at.timestamp()
    scheme, host, port = request_origin(req)
    client = connection.Client(
        peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=ts
    )
    server = connection.Server(address=(host, port))
    flow = http.HTTPFlow(client, server)
    flow.id = str(entry.interception_id)
    flow.comment = f"aibridge dump {entry.interception_id} (provider {entry.provider})"
    method, target, version = ([*req.parts, "", "", ""])[:3]
    flow.request = http.Request(
        host,
        port,
        method.encode(),
        scheme.encode(),
        b"",
        target.encode("utf-8", "surrogateescape"),
        (version or "HTTP/1.1").encode(),
        _headers(req),
        req.body,
        None,
        ts,
        ts,
    )
    if resp is not None and resp.status is not None:
        rversion, _status, reason = ([*resp.parts, "", ""])[:3]
        flow.response = http.Response(
            rversion.encode(),
            resp.status,
            reason.encode("ascii", "replace"),
            _headers(resp),
            resp.body,
            None,
            ts,
            ts,
        )
    return flow


def dumps_to_flows(entries: Sequence[DumpEntry]) -> list[http.HTTPFlow]:
    """One flow per dump that has a request file."""
    flows = []
    for entry in entries:
        req, resp = read_dump(entry)
        if req is not None:
            flows.append(dump_to_flow(entry, req, resp))
    return flows


def _private(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "wb")


def write_flow_file(entries: Sequence[DumpEntry], path: Path) -> int:
    """Write the dumps to `path` (0600) as mitmproxy flows; returns how many."""
    flows = dumps_to_flows(entries)
    with _private(path) as fh:
        writer = io.FlowWriter(fh)
        for flow in flows:
            writer.add(flow)
    return len(flows)


def write_har_file(entries: Sequence[DumpEntry], path: Path) -> int:
    """Write the dumps to `path` (0600) as HAR 1.2; returns how many entries."""
    flows = dumps_to_flows(entries)
    har = SaveHar().make_har(flows)
    for entry, flow in zip(har["log"]["entries"], flows, strict=True):
        entry["comment"] = flow.comment
    with _private(path) as fh:
        fh.write(json.dumps(har, indent=2).encode())
    return len(flows)


EXPORTERS = DumpExporters(flows=write_flow_file, har=write_har_file)
