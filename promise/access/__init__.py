"""Who may call the service: principals, their scopes and limits, and how they prove it."""
