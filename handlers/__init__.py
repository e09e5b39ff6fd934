"""Channel adapters: each turns its platform's updates into the core's inputs and renders the
core's outputs (`handlers.telegram`; `handlers.wecom` next)."""
