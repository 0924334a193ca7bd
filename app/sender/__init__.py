"""Outbound WhatsApp messages: one queue row, one provider HTTP call, one classified outcome.

`outbound.OutboundMessage` is the row as the sender worker hands it over; `providers` turns it
into Meta's Cloud API or Twilio's Messages API request; `errors` decides what each answer (or
each transport failure) means for the row: sent, retry later, failed for good, ambiguous (the
provider may have sent it) or stop (every further send would fail the same way). `sandbox` is a
local stand-in for both APIs, for tests, benchmarks and a local stack without credentials."""
