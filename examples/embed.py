"""Embed the library in a synchronous program: register, send, deliver.

    python examples/embed.py http://127.0.0.1:9000/hooks [sqlite:///./example.db]

Run `webhooks listen --port 9000 --secret <the printed secret>` beside it to
watch the webhook arrive.
"""

import sys
import time

from producer import Producer

url = sys.argv[1]
# allowed_cidrs opens this machine's own addresses, closed by default, so the
# example can deliver to a receiver running beside it.
hooks = Producer(
    sys.argv[2] if len(sys.argv) > 2 else "sqlite:///./example.db",
    allowed_cidrs=["127.0.0.0/8", "::1/128"],
)
endpoint = hooks.create_endpoint(url, tenant="acme", event_types=["invoice.*"])
print("endpoint", endpoint.id, "secret", endpoint.secret)
message = hooks.send("invoice.paid", {"invoice": "in_42", "amount": 1200}, tenant="acme")
with hooks.start_worker_thread():
    for _ in range(100):
        [delivery] = hooks.list_deliveries(message_id=message.id).data
        if delivery.status in ("succeeded", "failed"):
            break
        time.sleep(0.05)
print("delivery", delivery.id, delivery.status, delivery.last_status_code)
