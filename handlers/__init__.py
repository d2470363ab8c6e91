"""Channel adapters: platform events in, neutral inputs to the core; neutral replies out."""
