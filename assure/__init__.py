"""The application: settings, CLI, process roles, embedded Redis and the demo."""
