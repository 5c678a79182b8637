"""Verifies Switchyard deliveries with the `standardwebhooks` package (an implementation we
did not write). Reads one JSON object per line on stdin:
    {"secret": "whsec_...", "headers": {"webhook-id": ...}, "body_base64": "..."}
and prints one line per object: "ok" or "error: <reason>".
"""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        body = base64.b64decode(request["body_base64"])
        try:
            Webhook(request["secret"]).verify(body, request["headers"], json_parse=False)
            print("ok", flush=True)
        except Exception as error:  # any failure is reported, not raised
            print(f"error: {type(error).__name__}: {error}", flush=True)


if __name__ == "__main__":
    main()
