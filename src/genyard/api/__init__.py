"""HTTP faces. Each face parses its dialect, calls services, renders its own errors."""
