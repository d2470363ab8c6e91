"""The application: the service that runs one event in one transaction, settings and wiring."""
