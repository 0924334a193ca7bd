"""The service registry from a process's side (register_service, service_heartbeat)."""
