"""No models: a second app, for dependencies across apps (``run_before``)."""
