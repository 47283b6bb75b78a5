"""Who may call the service: principals, their scopes and limits, and how they prove it."""

# Nothing at the package level: callers import the module that holds what they use
# (``promise.access.principal``, ``promise.access.guard`` ...).
__all__: list[str] = []
