"""The staff desk in chat: queries, review, staff management and the broadcast composer."""
