"""Provider webhooks: Meta's Cloud API (`/webhooks/whatsapp`) and Twilio (`/webhooks/twilio`).

Each request is checked in the same order: the endpoint's secret is configured, the body is
within the limit, the provider's signature matches, the payload parses; then one RPC,
`public.ingest_whatsapp_webhook`, stores it in one transaction, and 200 means committed."""
