"""The command line: a driving adapter over the application, like the chat channels."""
