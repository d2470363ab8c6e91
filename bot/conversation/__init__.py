"""The volunteer conversation: state and one input in, new state and replies out."""
