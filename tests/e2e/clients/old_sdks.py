"""Run with PYTHONPATH=.cache/sdk-old: drive the gateway with anthropic 0.x and openai 1.x.

argv: gateway_base_url token. Prints one JSON object with what the clients saw.
"""

import json
import sys

import anthropic
import openai

base, token = sys.argv[1], sys.argv[2]
out = {"anthropic_version": anthropic.__version__, "openai_version": openai.__version__}
claude = anthropic.Anthropic(
    base_url=f"{base}/api/v2/aibridge/anthropic", api_key=token, max_retries=0
)
msg = claude.messages.create(
    model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
)
out["anthropic_blocking"] = msg.content[0].text
with claude.messages.stream(
    model="claude-sonnet-4-5",
    max_tokens=2048,
    thinking={"type": "enabled", "budget_tokens": 1024},
    messages=[{"role": "user", "content": "THINK hi"}],
) as stream:
    final = stream.get_final_message()
out["anthropic_stream_blocks"] = [b.type for b in final.content]
out["anthropic_stream_output_tokens"] = final.usage.output_tokens
oai = openai.OpenAI(base_url=f"{base}/api/v2/aibridge/openai/v1", api_key=token, max_retries=0)
chat = oai.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
out["chat_blocking"] = chat.choices[0].message.content
chunks = list(
    oai.chat.completions.create(
        model="gpt-4.1",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi"}],
    )
)
out["chat_stream_usage"] = chunks[-1].usage.total_tokens if chunks[-1].usage else None
with oai.responses.stream(model="gpt-5", input="hello") as rs:
    out["responses_stream"] = rs.get_final_response().output_text
print(json.dumps(out))
