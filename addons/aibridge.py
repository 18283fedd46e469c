"""Entry point for `mitmdump -s addons/aibridge.py` and `mitmweb -s addons/aibridge.py`.

    mitmdump -s addons/aibridge.py --mode reverse:http://localhost:1 \\
        --set connection_strategy=lazy --set ai_gateway_database_url=...

Every aibridge setting is a `--set ai_gateway_<name>=...` option (see `mitmdump --options`).
"""

from addons import aibridge_addon
from addons.state import Gateway

addons = [aibridge_addon(Gateway())]
