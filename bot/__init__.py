"""welfarebot: the platform-neutral core of the social-welfare proposal chatbot."""
