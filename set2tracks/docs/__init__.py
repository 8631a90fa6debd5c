"""Interactive API documentation: Swagger UI served from this app, under our CSP."""
