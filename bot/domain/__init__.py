"""Values and pure rules: the questionnaire, calendar, province, roles, filters and texts."""
