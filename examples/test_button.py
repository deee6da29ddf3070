"""A "Send test event" button, as a product builds it into its settings page.

The browser talks only to this app, the product's own backend; the backend
calls the webhooks API with a key the browser never sees. To try it, run these
from one directory (the `webhooks` commands share its ./webhooks.db), `serve`
and `listen` each in a terminal of its own:

    export WEBHOOKS_ALLOWED_CIDRS=127.0.0.0/8   # in each terminal: opens loopback
    webhooks serve                              # the API on :8000
    webhooks endpoints add http://127.0.0.1:9000/hooks --tenant acme   # ep_…, whsec_…
    webhooks listen --port 9000 --secret whsec_…     # the customer's receiver
    webhooks keys create --tenant acme          # whk_…, a key that sees only acme
    python examples/test_button.py --api http://127.0.0.1:8000 \\
        --key whk_… --endpoint ep_… --port 8002

and open http://127.0.0.1:8002/. `curl -X POST $API/endpoints` registers the
endpoint just as well (docs/quickstart.md).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from jinja2 import Environment
from pydantic import BaseModel

PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webhook endpoint</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto;
         padding: 0 1rem; color: #1f2328; }
  code, input, textarea, pre { font: 14px ui-monospace, monospace; }
  label { display: block; margin-top: 1rem; font-weight: 600; }
  input, textarea { width: 100%; box-sizing: border-box; padding: .4rem; }
  button { margin-top: 1rem; padding: .5rem 1.2rem; font: inherit; cursor: pointer; }
  #result { margin-top: 1.5rem; padding: .75rem 1rem; border-radius: 6px; }
  .sending { background: #f6f8fa; } .succeeded { background: #dafbe1; }
  .failed { background: #ffebe9; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0 0; }
  pre:empty { display: none; }
</style></head>
<body>
<h1>Webhook endpoint</h1>
<p><code>{{ endpoint.id }}</code><br><code>{{ endpoint.url }}</code></p>
<form id="test-form">
  <label for="event-type">Event type</label>
  <input id="event-type" value="webhook.test" required>
  <label for="data">Data (JSON, optional)</label>
  <textarea id="data" rows="4" placeholder='{"hello": "world"}'></textarea>
  <button id="send">Send test event</button>
</form>
<div id="result" role="status" aria-live="polite">
  <strong id="summary"></strong><pre id="body"></pre>
</div>
<script>
const result = document.getElementById("result");
function show(outcome, summary, body) {
  result.className = outcome;
  document.getElementById("summary").textContent = summary;
  // textContent, never innerHTML: the body is whatever the receiver sent.
  document.getElementById("body").textContent = body || "";
}
document.getElementById("test-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let data = null;
  const text = document.getElementById("data").value.trim();
  try { if (text) data = JSON.parse(text); } catch (error) {
    return show("failed", "The data is not valid JSON: " + error.message);
  }
  const button = document.getElementById("send");
  button.disabled = true;
  show("sending", "Sending…");
  try {
    const response = await fetch("test", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({event_type: document.getElementById("event-type").value, data}),
    });
    const answer = await response.json();
    if (!response.ok) return show("failed", answer.error.message);
    const what = answer.status_code ? `HTTP ${answer.status_code}` : answer.error;
    const outcome = answer.succeeded ? "succeeded" : "failed";
    const ms = Math.round(answer.duration_ms);
    show(outcome, `Test event ${outcome}: ${what} (${ms} ms)`, answer.response_body);
  } catch (error) {
    show("failed", "Could not reach the server: " + error.message);
  } finally {
    button.disabled = false;
  }
});
</script>
</body></html>""")


class TestEvent(BaseModel):
    """What the button asks to send."""

    event_type: str = "webhook.test"
    data: Any = None


def create_app(api: httpx.Client, endpoint_id: str) -> FastAPI:
    """The product's backend: the settings page and the route its button calls.

    ``endpoint_id`` stands for what the product knows about its signed-in
    customer; the browser never chooses which endpoint is tested.
    """
    app = FastAPI()

    @app.get("/")
    def settings_page() -> Response:
        answer = api.get(f"/v1/endpoints/{endpoint_id}")
        if answer.is_error:  # a wrong key or endpoint id: say which
            message = answer.json()["error"]["message"]
            return PlainTextResponse(f"Cannot show {endpoint_id}: {message}", status_code=502)
        return HTMLResponse(PAGE.render(endpoint=answer.json()))

    @app.post("/test")
    def send_test_event(event: TestEvent) -> JSONResponse:
        try:
            answer = api.post(f"/v1/endpoints/{endpoint_id}/test", json=event.model_dump())
        except httpx.TransportError as exc:
            error = {"code": "unavailable", "message": f"The webhooks API is unreachable: {exc}"}
            return JSONResponse({"error": error}, status_code=502)
        # Success or the API's {"error": {...}}: either is what the page shows.
        return JSONResponse(answer.json(), status_code=answer.status_code)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a page with a 'Send test event' button.")
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="webhooks service URL")
    # From the environment, the key stays out of shell history and `ps`.
    parser.add_argument(
        "--key",
        default=os.environ.get("WEBHOOKS_API_KEY"),
        required="WEBHOOKS_API_KEY" not in os.environ,
        help="API key, best scoped to the customer's tenant (or set WEBHOOKS_API_KEY)",
    )
    parser.add_argument("--endpoint", required=True, help="the endpoint id, ep_…")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    # A test send waits for the receiver's answer: up to the service's request
    # timeout (15 s by default), so wait longer than that.
    api = httpx.Client(
        base_url=args.api, headers={"Authorization": f"Bearer {args.key}"}, timeout=30
    )
    uvicorn.run(create_app(api, args.endpoint), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
