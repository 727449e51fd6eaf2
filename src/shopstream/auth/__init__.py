"""API keys, customer tokens, scopes and rate limits (docs/security.md)."""
