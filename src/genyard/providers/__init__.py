"""Model providers: Protocols, the registry, and one module per backend."""
