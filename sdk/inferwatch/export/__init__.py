"""How telemetry leaves the process: settings, providers, instruments, OTLP, the store, exit."""
